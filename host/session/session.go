// Package session joins a support session from the user's machine: it
// connects to the broker with the one-time code, negotiates media, and
// streams the captured screen as VP8 until the session ends.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/host/encode"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// Errors the host reports to its user.
var (
	ErrRefused = errors.New("the broker refused to join")
	ErrLost    = errors.New("lost the connection to the broker")
)

// Config configures a host session.
type Config struct {
	Broker *url.URL
	// CAFile, when set, is the only CA trusted for the broker.
	CAFile string
	Code   string
	// Display is the monitor index to share.
	Display int
	// FPS is the capture rate (default 30).
	FPS    int
	Logger *slog.Logger
	// OnJoined is called once the broker accepted the code.
	OnJoined func(sessionID string)
}

func (c *Config) checkAndSetDefaults() error {
	if c.Broker == nil {
		return errors.New("host: missing broker URL")
	}
	if c.Code == "" {
		return errors.New("host: missing support code")
	}
	if c.FPS <= 0 {
		c.FPS = 30
	}
	if c.FPS > 60 {
		c.FPS = 60
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OnJoined == nil {
		c.OnJoined = func(string) {}
	}
	return nil
}

// Run joins the session and streams until it ends. It returns the reason
// the session ended (nil error) or what went wrong.
func Run(ctx context.Context, cfg Config) (reason string, err error) {
	if err := cfg.checkAndSetDefaults(); err != nil {
		return "", err
	}
	log := cfg.Logger.With("component", "host")

	// The display comes first: without one there is nothing to share, and
	// the user should learn that before anyone is told they joined.
	capt, err := capture.Open(cfg.Display)
	if err != nil {
		return "", err
	}
	defer capt.Close()
	width, height := capt.Size()
	log.Info("capturing screen", "path", capt.Name(), "size", fmt.Sprintf("%dx%d", width, height))

	tlsCfg, err := dial.TLSConfig(cfg.CAFile)
	if err != nil {
		return "", err
	}
	ws, err := dial.WebSocket(ctx, cfg.Broker, "/ws/host", tlsCfg, nil)
	if err != nil {
		return "", err
	}
	sig := dial.NewConn(ws)
	defer sig.Close()
	// Closing the socket unblocks the reads below when ctx ends.
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()

	hostname, _ := os.Hostname()
	hello := protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: cfg.Code,
		Host: &protocol.HostInfo{Hostname: hostname, OS: runtime.GOOS, Width: width, Height: height, Capture: capt.Name()}}
	if err := sig.Send(protocol.TypeHello, "", hello); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}
	env, err := sig.Read()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}
	switch env.Type {
	case protocol.TypeWelcome:
	case protocol.TypeError:
		return "", fmt.Errorf("%w: %w", ErrRefused, dial.AsRemoteError(env))
	default:
		return "", fmt.Errorf("%w: unexpected %q before welcome", ErrRefused, env.Type)
	}
	var welcome protocol.Welcome
	if err := protocol.DecodePayload(env, &welcome); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}
	sessionID := welcome.Session
	log.Info("joined session", "session", sessionID)
	cfg.OnJoined(sessionID)

	api, err := rtc.NewAPI(rtc.Config{})
	if err != nil {
		return "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("create peer connection: %w", err)
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(rtc.VP8, "screen", "tether")
	if err != nil {
		return "", fmt.Errorf("create video track: %w", err)
	}
	sender, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return "", fmt.Errorf("add video track: %w", err)
	}

	st := &streamer{log: log, capt: capt, track: track, fps: cfg.FPS}
	st.keyframe.Store(true)
	var wg sync.WaitGroup
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer func() {
		cancelStream()
		pc.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() { // keyframe requests arrive as RTCP from the broker
		defer wg.Done()
		for {
			pkts, _, err := sender.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					st.keyframe.Store(true)
				}
			}
		}
	}()
	mediaFailed := make(chan struct{})
	var failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		log.Debug("media connection", "state", s.String())
		switch s {
		case webrtc.PeerConnectionStateConnected:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := st.run(streamCtx); err != nil {
					log.Error("streaming stopped", "err", err)
				}
			}()
		case webrtc.PeerConnectionStateFailed:
			failOnce.Do(func() { close(mediaFailed) })
		}
	})

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("create offer: %w", err)
	}
	offerSDP, err := rtc.GatherComplete(pc, offer)
	if err != nil {
		return "", err
	}
	if err := sig.Send(protocol.TypeOffer, sessionID, protocol.SDP{SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}

	msgs := make(chan protocol.Envelope)
	readErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			env, err := sig.Read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- env:
			case <-streamCtx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			sig.Send(protocol.TypeEnd, sessionID, protocol.End{Reason: "the host was stopped"})
			return "You stopped sharing.", nil
		case <-mediaFailed:
			return "", fmt.Errorf("%w: the media connection failed", ErrLost)
		case err := <-readErr:
			return "", fmt.Errorf("%w: %v", ErrLost, err)
		case env := <-msgs:
			switch env.Type {
			case protocol.TypeAnswer:
				var answer protocol.SDP
				if err := protocol.DecodePayload(env, &answer); err != nil {
					return "", fmt.Errorf("broker sent a bad answer: %w", err)
				}
				if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
					return "", fmt.Errorf("apply broker answer: %w", err)
				}
			case protocol.TypeEnded:
				var ended protocol.Ended
				protocol.DecodePayload(env, &ended)
				log.Info("session ended", "reason", ended.Reason)
				return ended.Reason, nil
			case protocol.TypeError:
				log.Warn("broker reported an error", "err", dial.AsRemoteError(env))
			}
		}
	}
}

// streamer captures, encodes and sends frames at a steady rate.
type streamer struct {
	log      *slog.Logger
	capt     capture.Capturer
	track    *webrtc.TrackLocalStaticSample
	fps      int
	keyframe atomic.Bool // set by keyframe requests, cleared when one is sent
	frames   atomic.Uint64
}

func (s *streamer) run(ctx context.Context) error {
	interval := time.Second / time.Duration(s.fps)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var enc *encode.VP8
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	encW, encH := 0, 0
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		frame, err := s.capt.Capture()
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if enc == nil || frame.Width != encW || frame.Height != encH {
			if enc != nil {
				enc.Close()
			}
			enc, err = encode.NewVP8(encode.Config{Width: frame.Width, Height: frame.Height, FPS: s.fps})
			if err != nil {
				return err
			}
			encW, encH = frame.Width, frame.Height
			s.keyframe.Store(true)
		}
		data, key, err := enc.Encode(frame.Pix, frame.Stride, s.keyframe.Load())
		if err != nil {
			return err
		}
		if key {
			s.keyframe.Store(false)
		}
		if len(data) == 0 {
			continue
		}
		now := time.Now()
		if err := s.track.WriteSample(media.Sample{Data: data, Duration: now.Sub(last)}); err != nil {
			return fmt.Errorf("send frame: %w", err)
		}
		last = now
		s.frames.Add(1)
	}
}
