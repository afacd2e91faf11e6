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
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/host/capture"
	"github.com/tether-support/tether/host/consent"
	"github.com/tether-support/tether/host/encode"
	"github.com/tether-support/tether/host/files"
	"github.com/tether-support/tether/host/input"
	"github.com/tether-support/tether/host/shell"
	"github.com/tether-support/tether/internal/dial"
	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// Errors the host reports to its user.
var (
	ErrRefused = errors.New("could not join the support session")
	ErrLost    = errors.New("lost the connection to the broker")
	// ErrDisplayGone is why the host stops waiting for a technician when
	// the user's desktop closes.
	ErrDisplayGone = errors.New("your desktop closed (the display went away), so nothing can be shared")
)

// errStoppedWaiting is how the user ends the wait for a technician, and
// stoppedWaiting what they are told then.
var errStoppedWaiting = errors.New("the user stopped waiting")

const stoppedWaiting = "You stopped waiting for your technician. Your code can no longer be used."

// codeExpired is what the user is told when no technician entered their
// code before it expired (at the time filled in): a normal end of the
// wait, with what to do next.
const codeExpired = "No technician connected: your support code expired at %s unused, so nothing was shared. To get a new code, start the host again and read the new code out to your technician."

// toUser turns the broker's reason for the end, written for the
// technician ("The user declined."), into words to the user ("You
// declined.").
func toUser(reason string) string {
	for _, r := range [][2]string{{"The user's ", "Your "}, {"The user is ", "You are "}, {"The user has ", "You have "}, {"The user ", "You "}} {
		if rest, ok := strings.CutPrefix(reason, r[0]); ok {
			return r[1] + rest
		}
	}
	return reason
}

// displayCheck is how often watchDisplay checks the display, and
// displayMisses how many checks in a row must fail before it counts as
// gone (one may fail while the X server is busy).
const (
	displayCheck  = time.Second
	displayMisses = 2
)

// watchDisplay calls gone once the display no longer accepts connections,
// checking until ctx ends. Streaming notices sooner while the screen is
// captured; this covers the rest of the time: paused, not shared yet,
// waiting for a technician.
func watchDisplay(ctx context.Context, gone func()) {
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(displayCheck):
		}
		if capture.Reachable() == nil {
			misses = 0
			continue
		}
		if misses++; misses >= displayMisses {
			gone()
			return
		}
	}
}

// Config configures a host session.
type Config struct {
	Broker *url.URL
	// CAFile, when set, is the only CA trusted for the broker; CAPEM is
	// the same given as PEM (from a download's join settings).
	CAFile string
	CAPEM  []byte
	// Code is the support code; empty with NewCode, when the broker
	// issues one that OnCode shows the user to read out.
	Code    string
	NewCode bool
	OnCode  func(code string, expires time.Time)
	// Display is the monitor index to share.
	Display int
	// FPS is the capture rate (default 30).
	FPS    int
	Logger *slog.Logger
	// OnJoined is called once the broker accepted the code.
	OnJoined func(sessionID string)
	// Prompter asks the user for consent; required: nothing is shared
	// without an answer.
	Prompter consent.Prompter
	// Show displays the sharing status to the user (who can do what).
	Show func(status string)
	// FilesRoot is the folder technicians may browse and fetch files from
	// (default: the user's home).
	FilesRoot string
	// FilesInbox is where files sent by technicians land (default:
	// Downloads/Tether in the user's home).
	FilesInbox string
	// MaxFileSize bounds one file transfer in bytes (default 4 GiB).
	MaxFileSize int64
	// OnTransfer, when set, shows file transfer progress to the user.
	OnTransfer func(files.Progress)
	// OnShells, when set, tells the user how many terminals are open on
	// their computer, each time the number changes.
	OnShells func(open int)
	// OnRemotePress, when set, is told each time a technician's button,
	// key or text goes into the user's desktop.
	OnRemotePress func()
	// Shell is the program run for remote shells (default: $SHELL).
	Shell string
	// Commands, when set, serves the user's commands (revoke, pause, end)
	// for the life of the session.
	Commands func(ctx context.Context, m *consent.Manager)
}

func (c *Config) checkAndSetDefaults() error {
	if c.Broker == nil {
		return errors.New("host: missing broker URL")
	}
	if c.Code == "" && !c.NewCode {
		return errors.New("host: missing support code")
	}
	if c.NewCode && c.OnCode == nil {
		return errors.New("host: a code asked for must be shown: missing OnCode")
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
	if c.Prompter == nil {
		return consent.ErrNoFrontEnd
	}
	if c.OnJoined == nil {
		c.OnJoined = func(string) {}
	}
	if c.FilesRoot == "" || c.FilesInbox == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("host: no home folder for file transfer: %w", err)
		}
		if c.FilesRoot == "" {
			c.FilesRoot = home
		}
		if c.FilesInbox == "" {
			c.FilesInbox = filepath.Join(home, "Downloads", "Tether")
		}
	}
	return nil
}

// Run joins the session and streams until it ends. It returns the reason
// the session ended (nil error) or what went wrong.
func Run(ctx context.Context, cfg Config) (reason string, err error) {
	inboxGiven := cfg.FilesInbox != ""
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
	captOwned := true // until the streamer owns it
	defer func() {
		if captOwned {
			capt.Close()
		}
	}()
	// The user's desktop can go away at any time (they log out, the X
	// server stops): the session ends then, with nothing left to share
	// and no window left for the user to stop it from.
	displayGone := make(chan struct{})
	lostDisplay := sync.OnceFunc(func() {
		log.Warn("the display went away: ending the session")
		close(displayGone)
	})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchDisplay(watchCtx, lostDisplay)
	width, height := capt.Size()
	log.Info("capturing screen", "path", capt.Name(), "size", fmt.Sprintf("%dx%d", width, height))
	// So do the shared folder and the inbox given: a wrong one fails
	// before the code is used.
	fsrv, err := files.New(files.Config{Root: cfg.FilesRoot, Inbox: cfg.FilesInbox, CheckInbox: inboxGiven, MaxSize: cfg.MaxFileSize,
		Logger: cfg.Logger.With("component", "files"), OnProgress: cfg.OnTransfer})
	if err != nil {
		return "", err
	}
	defer fsrv.Close()

	userEnded := make(chan struct{})
	var endOnce sync.Once
	var inj *input.Injector
	var mgr *consent.Manager
	shells := shell.New(shell.Config{Shell: cfg.Shell, Logger: cfg.Logger.With("component", "shell"), OnChange: cfg.OnShells})
	defer shells.Close()
	var sig *dial.Conn
	var sessionID string
	mgr, err = consent.New(consent.Config{
		Waiting:  true,
		Prompter: cfg.Prompter,
		Logger:   log,
		Show:     cfg.Show,
		OnChange: func(state protocol.ConsentState) {
			if inj != nil && !mgr.Allowed(protocol.PermControl) {
				inj.ReleaseAll()
			}
			// Revoked or paused: transfers stop and shells close at once,
			// whatever the broker does. The user reads which it was. Only
			// taking file transfer back removes the parts kept for a
			// resume: a pause keeps them, as a dropped connection does,
			// and a resume or another change leaves them (their
			// technician may be away for the moment).
			switch {
			case state.Change == consent.Revoked(protocol.PermFiles):
				fsrv.CancelAll()
			case state.Paused:
				fsrv.PauseAll()
			}
			shells.CloseDisallowed()
			if err := sig.Send(protocol.TypeConsentState, sessionID, state); err != nil {
				log.Warn("tell the broker about the change", "err", err)
			}
		},
		OnAnswer: func(answer protocol.ConsentAnswer) {
			if err := sig.Send(protocol.TypeConsentAnswer, sessionID, answer); err != nil {
				log.Warn("send consent answer", "err", err)
			}
		},
		OnEnd: func() { endOnce.Do(func() { close(userEnded) }) },
		OnAsk: func() {
			if inj != nil {
				inj.ReleaseAll()
			}
		},
	})
	if err != nil {
		return "", err
	}
	log.Info("consent prompts", "front end", cfg.Prompter.Name())
	// The user's commands are answered from now on: while the host waits
	// for a technician, "end" stops waiting (the code is given up) and
	// the others say that nothing is shared yet; none waits for later.
	cmdCtx, stopCommands := context.WithCancel(context.WithoutCancel(ctx))
	var cmdDone sync.WaitGroup
	defer func() {
		stopCommands()
		cmdDone.Wait()
	}()
	if cfg.Commands != nil {
		cmdDone.Add(1)
		go func() {
			defer cmdDone.Done()
			cfg.Commands(cmdCtx, mgr)
		}()
	}

	tlsCfg, err := dial.TLSConfig(cfg.CAFile)
	if len(cfg.CAPEM) > 0 {
		tlsCfg, err = dial.TLSConfigPEM(cfg.CAPEM)
	}
	if err != nil {
		return "", err
	}
	ws, err := dial.WebSocket(ctx, cfg.Broker, "/ws/host", tlsCfg, nil)
	if err != nil {
		return "", err
	}
	sig = dial.NewConn(ws)
	// A broker that froze, or whose network went, leaves the connection
	// open but silent: without pings the user would wait with a code for
	// a technician who cannot come, for as long as TCP takes to notice.
	sig.KeepAlive(dial.PingEvery, dial.BrokerSilence)
	// The broker's messages are read from here on, so that waiting for
	// them, even for a technician to enter the code, never keeps the host
	// from hearing that the display went away.
	msgs := make(chan protocol.Envelope)
	readErr := make(chan error, 1)
	quit, readDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			env, err := sig.Read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- env:
			case <-quit:
				return
			}
		}
	}()
	defer func() {
		close(quit)
		sig.Close()
		<-readDone
	}()
	// next is the broker's next message before the session starts.
	next := func() (protocol.Envelope, error) {
		select {
		case env := <-msgs:
			return env, nil
		case err := <-readErr:
			return protocol.Envelope{}, fmt.Errorf("%w: %v", ErrLost, err)
		case <-displayGone:
			sig.Send(protocol.TypeEnd, "", protocol.End{Reason: protocol.EndDisplayGone})
			return protocol.Envelope{}, ErrDisplayGone
		case <-userEnded:
			sig.Send(protocol.TypeEnd, "", protocol.End{Reason: protocol.EndByUser})
			return protocol.Envelope{}, errStoppedWaiting
		case <-ctx.Done():
			sig.Send(protocol.TypeEnd, "", protocol.End{Reason: protocol.EndByUser})
			return protocol.Envelope{}, errStoppedWaiting
		}
	}

	hostname, _ := os.Hostname()
	hello := protocol.Hello{Version: protocol.Version, Role: protocol.RoleHost, Code: cfg.Code, NewCode: cfg.NewCode,
		Host: &protocol.HostInfo{Hostname: hostname, OS: runtime.GOOS, Width: width, Height: height, Capture: capt.Name(),
			MaxFile: fsrv.MaxSize(), FilesRoot: files.HomeRelative(cfg.FilesRoot), FilesInbox: files.HomeRelative(cfg.FilesInbox)}}
	if err := sig.Send(protocol.TypeHello, "", hello); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}
	env, err := next()
	if errors.Is(err, errStoppedWaiting) {
		return stoppedWaiting, nil
	}
	if err != nil {
		return "", err
	}
	if cfg.NewCode && env.Type == protocol.TypeCode {
		// The user reads the code out; the welcome comes when a
		// technician enters it.
		var issued protocol.IssuedCode
		if err := protocol.DecodePayload(env, &issued); err != nil {
			return "", fmt.Errorf("%w: %v", ErrLost, err)
		}
		cfg.OnCode(issued.Code, issued.ExpiresAt)
		if env, err = next(); errors.Is(err, errStoppedWaiting) {
			return stoppedWaiting, nil
		} else if err != nil {
			return "", err
		}
		// No one came in time: nothing went wrong, the wait is over.
		var refused *dial.RemoteError
		if env.Type == protocol.TypeError && errors.As(dial.AsRemoteError(env), &refused) && refused.Code == protocol.CodeExpiredCode {
			return fmt.Sprintf(codeExpired, issued.ExpiresAt.Local().Format("15:04")), nil
		}
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
	sessionID = welcome.Session
	log.Info("joined session", "session", sessionID)
	cfg.OnJoined(sessionID)

	st := &streamer{log: log, maxFPS: cfg.FPS, allow: mgr.Allowed}
	st.keyframe.Store(true)
	st.capt, st.display, captOwned = capt, cfg.Display, false
	defer func() { st.current().Close() }()

	startKbps := encode.DefaultBitrateKbps(width, height)
	api, err := rtc.NewAPI(rtc.Config{
		CongestionControl: true,
		MinBitrate:        minBitrate,
		StartBitrate:      startKbps * 1000,
		MaxBitrate:        3 * startKbps * 1000,
	})
	if err != nil {
		return "", err
	}
	defer api.Close()
	pc, err := api.NewPeerConnection(rtc.Sending{OnBitrate: func(bps int) { st.bitrate.Store(int64(bps)) }})
	if err != nil {
		return "", fmt.Errorf("create peer connection: %w", err)
	}
	defer pc.Close()
	if st.track, err = newFrameTrack(); err != nil {
		return "", err
	}
	sender, err := pc.AddTransceiverFromTrack(st.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return "", fmt.Errorf("add video track: %w", err)
	}
	control, inputDC, err := rtc.DataChannels(pc)
	if err != nil {
		return "", err
	}
	// Points are mapped onto the display as it is captured now: the user
	// may change its resolution, the technician switch displays.
	inj = input.New(cfg.Logger, func() (x, y, w, h int) { return st.current().Bounds() })
	defer inj.ReleaseAll()
	rem := &remote{log: log, inj: inj, control: control, allow: mgr.Allowed, pressed: cfg.OnRemotePress}
	rem.selectDisplay = func(index int) (protocol.ControlMessage, error) {
		c, err := st.setDisplay(index)
		if err == nil {
			inj.ReleaseAll()
			w, h := c.Size()
			log.Info("sharing another display", "index", index, "size", fmt.Sprintf("%dx%d", w, h))
		}
		list, lerr := st.displays()
		return list, errors.Join(err, lerr)
	}
	inputDC.OnMessage(func(m webrtc.DataChannelMessage) { rem.onInput(m.Data) })
	// The broker opens a files or shell channel per technician, naming the
	// technician in the channel's protocol: each is checked against that
	// technician's own grants, on every message. Anything else is refused.
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		viewer := dc.Protocol()
		switch {
		case protocol.FilesChannel(dc.Label()) && mgr.AllowedFor(viewer, protocol.PermFiles):
			fsrv.Attach(dc, func() bool { return mgr.AllowedFor(viewer, protocol.PermFiles) })
		case protocol.ShellChannel(dc.Label()) && mgr.AllowedFor(viewer, protocol.PermShell):
			shells.Attach(dc, func() bool { return mgr.AllowedFor(viewer, protocol.PermShell) })
		default:
			log.Warn("refused a channel the user never allowed", "channel", dc.Label())
			dc.OnOpen(func() { dc.Close() })
		}
	})
	inputDC.OnClose(inj.ReleaseAll)
	control.OnMessage(func(m webrtc.DataChannelMessage) { rem.onControl(m.Data) })

	var wg sync.WaitGroup
	// Stopping the host (Ctrl+C, SIGTERM) ends the session as the user's
	// "end" does: below, once the broker has heard so. Until then nothing
	// stops early, not even an open question, which would otherwise be
	// answered no on the user's behalf.
	streamCtx, cancelStream := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		cancelStream()
		pc.Close()
		wg.Wait()
	}()
	control.OnOpen(func() {
		list, err := st.displays()
		if err == nil {
			rem.send(list)
		} else {
			log.Warn("list displays", "err", err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			rem.watchClipboard(streamCtx)
		}()
		go func() {
			defer wg.Done()
			rem.watchDisplays(streamCtx, list, st.displays, st.follow)
		}()
	})
	wg.Add(1)
	go func() { // keyframe requests and viewers' limits arrive as RTCP from the broker
		defer wg.Done()
		for {
			pkts, _, err := sender.Sender().ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					st.keyframe.Store(true)
				case *rtcp.ReceiverEstimatedMaximumBitrate:
					st.setLimit(p.Bitrate)
				}
			}
		}
	}()
	// The stream starts once, when the media connection first connects,
	// and goes on through the connection's recoveries (a network blip
	// reconnects it).
	startStream := sync.OnceFunc(func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.serve(streamCtx, lostDisplay)
		}()
	})
	mediaFailed := make(chan struct{})
	var failOnce sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		log.Debug("media connection", "state", s.String())
		rem.mediaChanged(s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			startStream()
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
	// From here the user's pause, resume and revoke apply to the session
	// (what they change is all set up).
	mgr.Start()
	if err := sig.Send(protocol.TypeOffer, sessionID, protocol.SDP{SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrLost, err)
	}

	// end asks the broker to end the session and stays until it confirms,
	// so that it hears why before it sees the media connection close.
	// Transfers stop first: the user reads that the session ended, not
	// that the technician left when the broker closes the channels.
	end := func(why string) {
		fsrv.EndAll()
		sig.Send(protocol.TypeEnd, sessionID, protocol.End{Reason: why})
		timeout := time.After(2 * time.Second)
		for {
			select {
			case env := <-msgs:
				if env.Type == protocol.TypeEnded {
					return
				}
			case <-readErr:
				return
			case <-timeout:
				return
			}
		}
	}
	for {
		select {
		case <-userEnded:
			end(protocol.EndByUser)
			return "You ended the session.", nil
		case <-displayGone:
			end(protocol.EndDisplayGone)
			return "Your desktop closed (the display went away).", nil
		case <-ctx.Done():
			end(protocol.EndByUser)
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
			case protocol.TypeConsentRequest:
				var req protocol.ConsentRequest
				if err := protocol.DecodePayload(env, &req); err != nil {
					log.Warn("broker sent a bad consent request", "err", err)
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					mgr.Handle(streamCtx, req) // OnAnswer tells the broker
				}()
			case protocol.TypeViewerLeft:
				var left protocol.ViewerLeft
				if protocol.DecodePayload(env, &left) == nil {
					mgr.Left(left.Viewer, left.CutOff)
					// What the technician had open ends here too, whatever
					// the broker does with their channels.
					shells.CloseDisallowed()
					fsrv.StopDisallowed()
					// The input channel does not say whose keys are down:
					// all go up, and a colleague in control presses again.
					inj.ReleaseAll()
				}
			case protocol.TypeEnded:
				var ended protocol.Ended
				protocol.DecodePayload(env, &ended)
				log.Info("session ended", "reason", ended.Reason)
				// The broker closes the technicians' channels once the
				// host has let go: transfers stop first, and the user
				// reads that the session ended, not that the technician
				// left.
				fsrv.EndAll()
				return protocol.Printable(toUser(ended.Reason)), nil
			case protocol.TypeError:
				log.Warn("broker reported an error", "err", dial.AsRemoteError(env))
			}
		}
	}
}
