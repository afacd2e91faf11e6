package relay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/rtc"
)

// hostOpenTimeout bounds how long a viewer's first message waits for the
// matching channel toward the host to open.
const hostOpenTimeout = 10 * time.Second

// hostClosedWait bounds how long the audit trail waits to learn why the
// user's computer closed a channel (see whyHostClosed).
const hostClosedWait = 2 * time.Second

// Why a files or shell channel closed, for the audit trail, when the
// session is not ending and the user still allows it (see whyClosed).
const (
	// whyLater: the user's computer closed it, and says why a moment
	// later (see whyHostClosed).
	whyLater = ""
	// viewerLeft: the technician's side closed it, or its connection is
	// gone. The console and the viewer command close a channel during a
	// transfer only when they leave: a cancel is a message.
	viewerLeft = "The technician left or lost the connection."
)

// pipe joins a viewer's files or shell channel to a channel of the same
// label toward the host. Each direction blocks while the other side's
// buffer is full, so a fast sender is slowed to the pace of the slow end
// instead of filling the broker's memory.
type pipe struct {
	v      *Viewer
	perm   string
	label  string
	tapID  string // the shell's name for the recording
	viewer *webrtc.DataChannel
	host   *webrtc.DataChannel
	toHost *rtc.Flow
	toView *rtc.Flow

	ctx      context.Context
	cancel   context.CancelFunc
	hostOpen chan struct{}
	once     sync.Once
	sent     atomic.Int64 // bytes viewer → host
	received atomic.Int64 // bytes host → viewer
	command  commandLine  // the shell command being typed, for the audit trail
	exited   atomic.Bool  // the host said the shell exited by itself …
	exitCode atomic.Int64 // … with this code
	transfer transfer     // the file being relayed, hashed as it passes
}

// featureName names what perm opens as the console's panels do: Files,
// Terminal. Technicians read the refusals that use it.
func featureName(perm string) string {
	if perm == protocol.PermShell {
		return "Terminal"
	}
	return "Files"
}

// channelName is how technicians know channel label: "Terminal 2" for
// shell-2, as the console's tabs number them; Files for files.
func channelName(label string) string {
	if n, ok := strings.CutPrefix(label, protocol.ChannelShellPrefix); ok {
		return "Terminal " + n
	}
	return "Files"
}

// openPipe accepts a files or shell channel the viewer opened, if the
// user granted perm to this viewer, and opens its twin toward the host.
func (v *Viewer) openPipe(dc *webrtc.DataChannel, perm string) {
	label := dc.Label()
	refuse := func(reason string) {
		v.drop(reason)
		dc.OnOpen(func() { dc.Close() })
		dc.OnMessage(func(webrtc.DataChannelMessage) {})
	}
	if !v.opts.CanControl {
		refuse(fmt.Sprintf("This session is view-only for you, so %s was not opened.", channelName(label)))
		return
	}
	if !v.allowed(perm) {
		refuse(fmt.Sprintf("The user has not allowed %s.", featureName(perm)))
		return
	}
	v.s.mu.Lock()
	host := v.s.host
	v.s.mu.Unlock()
	if host == nil {
		refuse("The user's computer is not connected.")
		return
	}
	v.mu.Lock()
	if v.pipes == nil {
		v.pipes = map[string]*pipe{}
	}
	shells := 0
	for l := range v.pipes {
		if protocol.ShellChannel(l) {
			shells++
		}
	}
	_, dup := v.pipes[label]
	v.mu.Unlock()
	if dup {
		refuse(fmt.Sprintf("%s is already open.", channelName(label)))
		return
	}
	if perm == protocol.PermShell && shells >= protocol.MaxShells {
		refuse(fmt.Sprintf("At most %d terminals can be open at once.", protocol.MaxShells))
		return
	}
	ordered := true
	id := v.opts.ID
	hostDC, err := host.CreateDataChannel(label, &webrtc.DataChannelInit{Ordered: &ordered, Protocol: &id})
	if err != nil {
		v.s.cfg.Logger.Warn("open channel toward host", "channel", label, "err", err)
		refuse("The broker could not reach the user's computer.")
		return
	}
	marks := rtc.BulkMarks
	if perm == protocol.PermShell {
		marks = rtc.TerminalMarks
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipe{v: v, perm: perm, label: label, tapID: label + "." + id, viewer: dc, host: hostDC,
		toHost: rtc.NewFlow(hostDC, marks), toView: rtc.NewFlow(dc, marks), ctx: ctx, cancel: cancel, hostOpen: make(chan struct{})}
	v.mu.Lock()
	v.pipes[label] = p
	v.mu.Unlock()

	hostDC.OnOpen(func() {
		// The transcript opens before anything typed can pass.
		if perm == protocol.PermShell {
			v.s.cfg.Logger.Info("shell opened", "viewer", v.opts.Name, "channel", label)
			v.audit("shell.opened", map[string]any{"channel": label})
			if tap := v.s.cfg.ShellTap; tap != nil {
				tap.ShellOpened(p.tapID, id, 80, 24)
			}
		}
		close(p.hostOpen)
	})
	dc.OnMessage(p.fromViewer)
	hostDC.OnMessage(p.fromHost)
	dc.OnClose(func() { p.close(p.v.why(perm, viewerLeft)) })
	hostDC.OnClose(func() { p.close(whyLater) })
}

// fromViewer checks and forwards one message toward the host.
func (p *pipe) fromViewer(m webrtc.DataChannelMessage) {
	traffic := &p.v.s.cfg.Traffic.FilesFromViewers
	if p.perm == protocol.PermShell {
		traffic = &p.v.s.cfg.Traffic.ShellFromViewers
	}
	traffic.Add(uint64(len(m.Data)))
	if !p.v.allowed(p.perm) {
		p.v.drop(fmt.Sprintf("The user has not allowed %s.", featureName(p.perm)))
		p.close(p.v.why(p.perm, viewerLeft))
		return
	}
	var shellMsg protocol.ShellMessage
	if m.IsString {
		if p.perm == protocol.PermFiles {
			_, err := protocol.DecodeFile(m.Data)
			if err != nil {
				p.v.drop("A file message was refused: " + err.Error())
				return
			}
		} else {
			msg, err := protocol.DecodeShell(m.Data)
			if err != nil {
				p.v.drop("A Terminal message was refused: " + err.Error())
				return
			}
			shellMsg = msg
		}
	} else if len(m.Data) > protocol.FileChunk {
		p.v.drop(fmt.Sprintf("A %d-byte message was refused: the limit is %d.", len(m.Data), protocol.FileChunk))
		return
	}
	if !p.waitHost() {
		return
	}
	// A resize is recorded once the transcript is open: the first comes
	// as the channel opens, often before the host's side has.
	if tap := p.v.s.cfg.ShellTap; tap != nil && shellMsg.Type == protocol.ShellResize {
		tap.ShellResized(p.tapID, shellMsg.Cols, shellMsg.Rows)
	}
	if p.perm == protocol.PermShell && !m.IsString {
		// What is typed where the terminal hides it (a password) is
		// not recorded, even where typing is.
		if tap := p.v.s.cfg.ShellTap; tap != nil && !p.command.isHidden() {
			tap.ShellData(p.tapID, false, m.Data)
		}
		p.command.feed(m.Data, func(cmd string) {
			p.v.audit("shell.command", map[string]any{"channel": p.label, "command": cmd})
		})
	}
	if p.perm == protocol.PermFiles && !m.IsString {
		p.transfer.add(protocol.DirectionUpload, m.Data)
	}
	p.sent.Add(int64(len(m.Data)))
	var err error
	if m.IsString {
		err = p.toHost.SendText(p.ctx, string(m.Data))
	} else {
		err = p.toHost.Send(p.ctx, m.Data)
	}
	if err != nil {
		p.close(whyLater)
	}
}

// waitHost waits until the channel toward the host is open; false means
// the pipe closed meanwhile.
func (p *pipe) waitHost() bool {
	select {
	case <-p.hostOpen:
		return true
	default:
	}
	t := time.NewTimer(hostOpenTimeout)
	defer t.Stop()
	select {
	case <-p.hostOpen:
		return true
	case <-p.ctx.Done():
		return false
	case <-t.C:
		p.v.drop("The user's computer did not open the channel.")
		p.close("The user's computer did not open the channel.")
		return false
	}
}

// fromHost forwards one message toward the viewer; the host's word on a
// finished or refused transfer goes into the audit trail.
func (p *pipe) fromHost(m webrtc.DataChannelMessage) {
	traffic := &p.v.s.cfg.Traffic.FilesFromHosts
	if p.perm == protocol.PermShell {
		traffic = &p.v.s.cfg.Traffic.ShellFromHosts
	}
	traffic.Add(uint64(len(m.Data)))
	if !p.waitHost() { // its open handler has run: the transcript is open
		return
	}
	if p.v.over() {
		return
	}
	if p.perm == protocol.PermFiles {
		if !m.IsString {
			p.transfer.add(protocol.DirectionDownload, m.Data)
		} else if msg, err := protocol.DecodeFile(m.Data); err == nil {
			p.auditFile(msg)
		}
	}
	if m.IsString && p.perm == protocol.PermShell {
		msg, err := protocol.DecodeShell(m.Data)
		switch {
		case err != nil:
		case msg.Type == protocol.ShellHidden || msg.Type == protocol.ShellShown:
			p.command.setHidden(msg.Type == protocol.ShellHidden)
		case msg.Type == protocol.ShellExit:
			p.exitCode.Store(int64(msg.Code))
			p.exited.Store(true)
		}
	}
	if p.perm == protocol.PermShell && !m.IsString {
		p.command.output(m.Data)
		if tap := p.v.s.cfg.ShellTap; tap != nil {
			tap.ShellData(p.tapID, true, m.Data)
		}
	}
	p.received.Add(int64(len(m.Data)))
	var err error
	if m.IsString {
		err = p.toView.SendText(p.ctx, string(m.Data))
	} else {
		err = p.toView.Send(p.ctx, m.Data)
	}
	if err != nil {
		p.close(p.v.why(p.perm, viewerLeft))
	}
}

// auditFile follows the host's word on transfers: it records a completed
// or refused transfer, and one that stopped half way.
func (p *pipe) auditFile(msg protocol.FileMessage) {
	detail := map[string]any{"name": msg.Name, "size": msg.Size, "sha256": msg.SHA256, "direction": msg.Direction, "path": msg.Path}
	switch {
	case msg.Type == protocol.FileReady || msg.Type == protocol.FileMeta:
		p.interrupted("The user's computer began another transfer.")
		p.transfer.start(msg)
	case msg.Type == protocol.FileError && msg.Code == protocol.FileErrBusy:
		// A request refused while the transfer under way goes on.
	case msg.Type == protocol.FileError && msg.Direction == "":
		// Cancelled, or refused because the user no longer allows files.
		p.interrupted(msg.Message)
	case msg.Type == protocol.FileDone:
		if sum, whole := p.transfer.finish(msg.Size); whole {
			detail["relayed_sha256"] = sum
		}
		p.v.s.cfg.Logger.Info("file transferred", "viewer", p.v.opts.Name, "direction", msg.Direction, "name", msg.Name, "size", msg.Size)
		p.v.audit("file.transfer", detail)
	case msg.Type == protocol.FileError && msg.Direction != "":
		p.transfer.stop()
		detail["code"], detail["reason"] = msg.Code, msg.Message
		p.v.audit("file.refused", detail)
	}
}

// interrupted records the transfer under way, if any, as stopped half way:
// the part of the file that moved (a download the technician cancelled,
// a connection cut) is in the audit trail even if it is never resumed.
func (p *pipe) interrupted(reason string) {
	if about, bytes, ok := p.transfer.stop(); ok {
		p.auditInterrupted(about, bytes, reason)
	}
}

func (p *pipe) auditInterrupted(about protocol.FileMessage, bytes int64, reason string) {
	p.v.audit("file.interrupted", map[string]any{"name": about.Name, "size": about.Size, "direction": about.Direction,
		"path": about.Path, "offset": about.Offset, "relayed_bytes": bytes, "reason": reason})
}

// close closes both sides once. why says why, for the audit trail of a
// file stopped half way; whyLater when the user's computer closed the
// channel, and the broker learns why a moment later.
func (p *pipe) close(why string) {
	p.once.Do(func() {
		p.cancel()
		if about, bytes, ok := p.transfer.stop(); ok && p.perm == protocol.PermFiles {
			if why == whyLater {
				l := &lateStop{p: p, about: about, bytes: bytes}
				p.v.mu.Lock()
				p.v.lateStops = append(p.v.lateStops, l)
				p.v.mu.Unlock()
				go func() {
					l.record(p.v.whyHostClosed(p.perm))
					p.v.mu.Lock()
					p.v.lateStops = slices.DeleteFunc(p.v.lateStops, func(x *lateStop) bool { return x == l })
					p.v.mu.Unlock()
				}()
			} else {
				p.auditInterrupted(about, bytes, why)
			}
		}
		p.v.mu.Lock()
		if p.v.pipes[p.label] == p {
			delete(p.v.pipes, p.label)
		}
		p.v.mu.Unlock()
		// While the session ends, the user's computer hears why over
		// signalling and stops its transfers itself; its side closes with
		// the relay, once it has let go. Closed now, it could overtake
		// the end and tell the user that the technician left.
		p.v.s.mu.Lock()
		ending := p.v.s.ending != ""
		p.v.s.mu.Unlock()
		// Closing from a channel's own callback must not wait on it.
		go func() {
			p.viewer.Close()
			if !ending {
				p.host.Close()
			}
		}()
		opened := false
		select {
		case <-p.hostOpen:
			opened = true
		default:
		}
		if p.perm == protocol.PermShell && opened {
			// A shell the host refused shows as closed with nothing sent back.
			// One that ended by itself (exit) says with what code, as the
			// technician saw it; without one it was closed from outside.
			detail := map[string]any{"channel": p.label, "input_bytes": p.sent.Load(), "output_bytes": p.received.Load()}
			if p.exited.Load() {
				detail["code"] = p.exitCode.Load()
			}
			p.v.audit("shell.closed", detail)
			if tap := p.v.s.cfg.ShellTap; tap != nil {
				tap.ShellClosed(p.tapID)
			}
		}
	})
}

// lateStop is a transfer that stopped when the user's computer closed its
// channel, to be recorded with the reason the broker learns a moment later
// (see whyHostClosed), or at once by the session's end.
type lateStop struct {
	once  sync.Once
	p     *pipe
	about protocol.FileMessage
	bytes int64
}

// record puts the stop in the audit trail with why, the first time only.
func (l *lateStop) record(why string) {
	l.once.Do(func() { l.p.auditInterrupted(l.about, l.bytes, why) })
}

// closePipes closes the viewer's pipes that need a permission it lost,
// or all of them (keep false for every permission); fallback says why,
// unless the broker knows better (see why).
func (v *Viewer) closePipes(keep func(perm string) bool, fallback string) {
	v.mu.Lock()
	ps := make([]*pipe, 0, len(v.pipes))
	for _, p := range v.pipes {
		ps = append(ps, p)
	}
	v.mu.Unlock()
	for _, p := range ps {
		if !keep(p.perm) { // keep may take v.mu
			p.close(v.why(p.perm, fallback))
		}
	}
}

// why says why the viewer's channels for perm close now, as the audit
// trail has it: the session ends, the user paused it or took perm back;
// fallback if none of these.
func (v *Viewer) why(perm, fallback string) string {
	why, _ := v.whyClosed(perm)
	return cmp.Or(why, fallback)
}

// whyClosed says why the viewer's channels for perm close now, if the
// broker knows, and returns a channel closed at the next change of that.
func (v *Viewer) whyClosed(perm string) (why string, changed <-chan struct{}) {
	// The channel is taken first: a change after it closes it.
	v.mu.Lock()
	changed = v.changed
	paused, granted, cut := v.paused, v.grants[perm], v.cutOff
	v.mu.Unlock()
	v.s.mu.Lock()
	ending := v.s.ending
	v.s.mu.Unlock()
	took := "The user took back file transfer."
	if perm == protocol.PermShell {
		took = "The user took back the terminal."
	}
	switch {
	case ending != "":
		return ending, changed
	case cut != "":
		return cut, changed
	case paused:
		return "The user paused the session.", changed
	case !granted:
		return took, changed
	}
	return "", changed
}

// whyHostClosed waits a moment for why the user's computer closed one of
// the viewer's files channels: the user took file transfer back, paused or
// ended the session. The user's computer stops its transfers first and
// tells the broker just after, over signalling, which the closed channel
// may overtake.
func (v *Viewer) whyHostClosed(perm string) string {
	t := time.NewTimer(hostClosedWait)
	defer t.Stop()
	for {
		why, changed := v.whyClosed(perm)
		if why != "" {
			return why
		}
		select {
		case <-changed:
		case <-t.C:
			return "The user's computer closed the connection for files."
		}
	}
}

// changedLocked tells whyHostClosed that why channels close may have
// changed. v.mu is held.
func (v *Viewer) changedLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *Viewer) audit(typ string, detail map[string]any) {
	if v.opts.OnAudit != nil {
		v.opts.OnAudit(typ, detail)
	}
}
