package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// Shell is a terminal on the user's machine. Read returns its output,
// Write sends keystrokes.
type Shell struct {
	dc   *webrtc.DataChannel
	flow *rtc.Flow
	out  *io.PipeReader
	pw   *io.PipeWriter

	mu     sync.Mutex
	code   int
	exited bool
	done   chan struct{}
	once   sync.Once
}

// Shell opens shell number n (1…99) at cols × rows; the user must have
// granted the shell permission.
func (j *Joined) Shell(ctx context.Context, n, cols, rows int) (*Shell, error) {
	label := fmt.Sprintf("%s%d", protocol.ChannelShellPrefix, n)
	if !protocol.ShellChannel(label) {
		return nil, fmt.Errorf("shell number %d out of range", n)
	}
	ordered := true
	dc, err := j.pc.CreateDataChannel(label, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", label, err)
	}
	pr, pw := io.Pipe()
	s := &Shell{dc: dc, flow: rtc.NewFlow(dc, rtc.TerminalMarks), out: pr, pw: pw, done: make(chan struct{})}
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if !m.IsString {
			pw.Write(m.Data) // blocks while the reader is behind
			return
		}
		msg, err := protocol.DecodeShell(m.Data)
		if err == nil && msg.Type == protocol.ShellExit {
			s.mu.Lock()
			s.code, s.exited = msg.Code, true
			s.mu.Unlock()
		}
	})
	dc.OnOpen(func() { j.log.Debug("channel open", "channel", label) })
	dc.OnClose(s.closed)
	// A channel whose connection died never hears its close.
	go func() {
		select {
		case <-j.done:
			s.closed()
		case <-s.done:
		}
	}()
	if err := j.waitChannel(ctx, dc); err != nil {
		dc.Close()
		if m, ok := j.LastControl(protocol.ControlInputDropped); ok && m.Reason != "" && errors.Is(err, ErrChannelClosed) {
			return nil, fmt.Errorf("%w: %s", err, m.Reason)
		}
		return nil, err
	}
	if err := s.Resize(cols, rows); err != nil {
		dc.Close()
		return nil, err
	}
	return s, nil
}

// Read reads terminal output; io.EOF once the shell is closed.
func (s *Shell) Read(p []byte) (int, error) { return s.out.Read(p) }

// Write sends keystrokes.
func (s *Shell) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += protocol.FileChunk {
		end := min(off+protocol.FileChunk, len(p))
		if err := s.flow.Send(context.Background(), p[off:end]); err != nil {
			return off, fmt.Errorf("%w: %v", ErrChannelClosed, err)
		}
	}
	// The channel's writer sends what was queued; let it run before the
	// caller's next read of a terminal, a blocking system call, holds this
	// thread and its processor: the keystroke would wait for the runtime
	// to notice.
	runtime.Gosched()
	return len(p), nil
}

// Resize tells the remote terminal its new size.
func (s *Shell) Resize(cols, rows int) error {
	return s.flow.SendText(context.Background(), string(protocol.EncodeShell(protocol.ShellMessage{Type: protocol.ShellResize, Cols: cols, Rows: rows})))
}

// Done is closed when the shell's channel closed.
func (s *Shell) Done() <-chan struct{} { return s.done }

// ExitCode returns the shell's exit code, and false if it did not exit
// by itself (it was closed: revoked, session ended).
func (s *Shell) ExitCode() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code, s.exited
}

// Close closes the shell; the host hangs it up. Read returns io.EOF at
// once, also when the connection is dead and the host never answers.
func (s *Shell) Close() error {
	err := s.dc.Close()
	s.closed()
	return err
}

// closed ends Read and Done, once.
func (s *Shell) closed() {
	s.once.Do(func() {
		s.pw.Close()
		close(s.done)
	})
}
