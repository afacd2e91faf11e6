package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tether-support/tether/internal/protocol"
	"github.com/tether-support/tether/internal/reserve"
	"github.com/tether-support/tether/internal/rtc"
)

// ErrChannelClosed is returned when the broker or the host closed a files
// or shell channel, typically because the user has not allowed it.
var ErrChannelClosed = errors.New("the channel was closed")

// FileError is a transfer the host refused or that failed there.
type FileError struct {
	Code    string // one of protocol.FileErr…
	Message string
}

func (e *FileError) Error() string { return e.Message + " (" + e.Code + ")" }

// Progress is told how many bytes of a transfer are done.
type Progress func(done, total int64)

// Files is the files channel of a joined session: one transfer at a time.
type Files struct {
	j    *Joined
	dc   *webrtc.DataChannel
	flow *rtc.Flow
	in   chan webrtc.DataChannelMessage

	closeOnce sync.Once
	closed    chan struct{}

	// KeepPartial, when set, leaves the host what an upload cut short by
	// its context sent, for the next Push of the same file to resume,
	// instead of telling the host to abandon it; the channel is then of
	// no further use and is closed.
	KeepPartial bool
}

// Files opens the files channel; the user must have granted file transfer.
func (j *Joined) Files(ctx context.Context) (*Files, error) {
	ordered := true
	dc, err := j.pc.CreateDataChannel(protocol.ChannelFiles, &webrtc.DataChannelInit{Ordered: &ordered})
	if err != nil {
		return nil, fmt.Errorf("open files channel: %w", err)
	}
	f := &Files{j: j, dc: dc, flow: rtc.NewFlow(dc, rtc.BulkMarks), in: make(chan webrtc.DataChannelMessage, 16), closed: make(chan struct{})}
	// Blocking here when the reader is behind slows the sender down
	// through the transport's flow control.
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case f.in <- m:
		case <-f.closed:
		}
	})
	dc.OnOpen(func() { j.log.Debug("channel open", "channel", dc.Label()) })
	dc.OnClose(f.markClosed)
	// A channel whose connection died never hears its close.
	go func() {
		select {
		case <-j.done:
			f.markClosed()
		case <-f.closed:
		}
	}()
	if err := j.waitChannel(ctx, dc); err != nil {
		dc.Close()
		return nil, f.closedErr(err)
	}
	return f, nil
}

// waitChannel waits for a channel of the client's own to open; one the
// broker refused opens and closes at once, or never opens.
func (j *Joined) waitChannel(ctx context.Context, dc *webrtc.DataChannel) error {
	for {
		switch dc.ReadyState() {
		case webrtc.DataChannelStateOpen:
			return nil
		case webrtc.DataChannelStateClosing, webrtc.DataChannelStateClosed:
			return ErrChannelClosed
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("data channel %s did not open: %w", dc.Label(), ctx.Err())
		case <-j.done:
			return j.Over()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close closes the channel; a transfer under way can resume later.
func (f *Files) Close() error {
	err := f.dc.Close()
	f.markClosed()
	return err
}

func (f *Files) markClosed() { f.closeOnce.Do(func() { close(f.closed) }) }

// closesSoon reports whether the channel is closed or closes within a
// second: a send that the host's close (a pause, a revoke) cut short can
// fail with the transport's own error ("stream closed") a moment before
// the channel hears of its close.
func (f *Files) closesSoon() bool {
	select {
	case <-f.closed:
		return true
	case <-time.After(time.Second):
		return false
	}
}

// whileConnected returns ctx, cancelled also when the connection is over:
// a transfer waiting for room to send on a dead connection gives up.
func (f *Files) whileConnected(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-f.j.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// explain replaces a transfer's error with why the connection is over,
// when it is.
func (f *Files) explain(err error) error {
	if err == nil {
		return nil
	}
	if over := f.j.Over(); over != nil {
		return over
	}
	return err
}

// send writes one JSON message.
func (f *Files) send(ctx context.Context, m protocol.FileMessage) error {
	data, err := protocol.EncodeFile(m)
	if err != nil {
		return err
	}
	if err := f.flow.SendText(ctx, string(data)); err != nil {
		return f.closedErr(err)
	}
	return nil
}

// closedErr explains a closed channel with what the broker said, if
// anything.
func (f *Files) closedErr(err error) error {
	if errors.Is(err, ErrEnded) || errors.Is(err, ErrDisconnected) || (err != nil && !errors.Is(err, rtc.ErrChannelClosed) && !errors.Is(err, ErrChannelClosed) && !f.closesSoon()) {
		return err
	}
	if why := f.j.ClosedBecause(protocol.PermFiles); why != nil {
		return fmt.Errorf("%w: %w", ErrChannelClosed, why)
	}
	// The broker's reason travels on the control channel and may come a
	// moment after the close.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m, werr := f.j.WaitControl(ctx, protocol.ControlInputDropped, func(m protocol.ControlMessage) bool { return m.Reason != "" }); werr == nil {
		return fmt.Errorf("%w: %s", ErrChannelClosed, m.Reason)
	}
	return ErrChannelClosed
}

// next returns the next message; a binary one when want is "".
func (f *Files) next(ctx context.Context) (webrtc.DataChannelMessage, error) {
	select {
	case m := <-f.in:
		return m, nil
	case <-ctx.Done():
		return webrtc.DataChannelMessage{}, ctx.Err()
	case <-f.closed:
		select {
		case m := <-f.in:
			return m, nil
		default:
		}
		return webrtc.DataChannelMessage{}, f.closedErr(nil)
	}
}

// reply waits for the host's JSON answer, skipping nothing: binary data
// here is a protocol error.
func (f *Files) reply(ctx context.Context) (protocol.FileMessage, error) {
	m, err := f.next(ctx)
	if err != nil {
		return protocol.FileMessage{}, err
	}
	if !m.IsString {
		return protocol.FileMessage{}, errors.New("the host sent file data out of turn")
	}
	msg, err := protocol.DecodeFile(m.Data)
	if err != nil {
		return msg, err
	}
	if msg.Type == protocol.FileError {
		return msg, &FileError{Code: msg.Code, Message: msg.Message}
	}
	return msg, nil
}

// cancelWait bounds how long a cancelled transfer waits for the host to
// confirm.
const cancelWait = 5 * time.Second

// cancel tells the host to abandon the transfer when ctx was cancelled,
// and waits for its confirmation so that the next request starts clean.
func (f *Files) cancel(ctx context.Context, err error) error {
	if ctx.Err() == nil || f.j.Over() != nil {
		return err
	}
	if f.KeepPartial {
		f.Close() // as a dropped connection: the host keeps the partial upload
		return err
	}
	return f.abandon(err)
}

// abandon tells the host to stop the transfer under way, and waits for its
// confirmation so that the next request starts clean; it returns err.
func (f *Files) abandon(err error) error {
	wait, stop := context.WithTimeout(context.Background(), cancelWait)
	defer stop()
	if f.send(wait, protocol.FileMessage{Type: protocol.FileCancel}) != nil {
		return err
	}
	for {
		m, rerr := f.next(wait)
		if rerr != nil {
			return err
		}
		if !m.IsString {
			continue // data already on its way
		}
		if msg, derr := protocol.DecodeFile(m.Data); derr == nil && msg.Type == protocol.FileError && msg.Code == protocol.FileErrCancelled {
			return err
		}
	}
}

// List returns the entries of a folder under the shared root ("" or "."
// for the root itself).
func (f *Files) List(ctx context.Context, path string) ([]protocol.FileEntry, error) {
	msg, err := f.Listing(ctx, path)
	return msg.Entries, err
}

// Listing returns the host's listing of a folder: its entries, and in
// Message what the host says about them (that a long folder was cut
// short).
func (f *Files) Listing(ctx context.Context, path string) (protocol.FileMessage, error) {
	if path == "" {
		path = "."
	}
	if err := f.send(ctx, protocol.FileMessage{Type: protocol.FileList, Path: path}); err != nil {
		return protocol.FileMessage{}, err
	}
	msg, err := f.reply(ctx)
	if err != nil {
		return protocol.FileMessage{}, err
	}
	if msg.Type != protocol.FileListing {
		return protocol.FileMessage{}, fmt.Errorf("expected a listing, got %q", msg.Type)
	}
	return msg, nil
}

// HashFile returns the hex SHA-256 of a local file.
func HashFile(path string) (string, int64, error) {
	return hashFile(context.Background(), path)
}

// hashFile is HashFile, given up when ctx ends: a large file takes a
// while, and Ctrl+C stops it at once.
func hashFile(ctx context.Context, path string) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, whileOn{ctx, fh})
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// whileOn reads r until ctx ends.
type whileOn struct {
	ctx context.Context
	r   io.Reader
}

func (w whileOn) Read(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.r.Read(p)
}

// Push uploads a local file to the user's inbox as name (default: the
// local file's name). If an earlier attempt was cut off, the host says how
// much it has and only the rest is sent. It returns the host's record of
// the verified file (its final name and path there).
func (f *Files) Push(ctx context.Context, local, name string, progress Progress) (protocol.FileMessage, error) {
	ctx, cancel := f.whileConnected(ctx)
	defer cancel()
	m, err := f.push(ctx, local, name, progress)
	return m, f.explain(err)
}

// CheckSize refuses a file of size bytes that the user's computer said it
// would not take, before it is read through for its SHA-256 (a minute for
// tens of gigabytes). A computer that did not say is asked with the hash.
func (f *Files) CheckSize(name string, size int64) error {
	if host := f.j.Host(); host != nil && host.MaxFile > 0 && size > host.MaxFile {
		return &FileError{Code: protocol.FileErrTooLarge, Message: fmt.Sprintf("%s is %d bytes; the limit is %d.", name, size, host.MaxFile)}
	}
	return nil
}

func (f *Files) push(ctx context.Context, local, name string, progress Progress) (protocol.FileMessage, error) {
	if name == "" {
		name = filepath.Base(local)
	}
	if st, err := os.Stat(local); err != nil {
		return protocol.FileMessage{}, err
	} else if err := f.CheckSize(name, st.Size()); err != nil {
		return protocol.FileMessage{}, err
	}
	sum, size, err := hashFile(ctx, local)
	if err != nil {
		return protocol.FileMessage{}, err
	}
	fh, err := os.Open(local)
	if err != nil {
		return protocol.FileMessage{}, err
	}
	defer fh.Close()
	if err := f.send(ctx, protocol.FileMessage{Type: protocol.FilePut, Name: name, Size: size, SHA256: sum, Progress: true}); err != nil {
		return protocol.FileMessage{}, err
	}
	ready, err := f.reply(ctx)
	if err != nil {
		return ready, f.cancel(ctx, err)
	}
	if ready.Type != protocol.FileReady || ready.Offset > size {
		return ready, fmt.Errorf("the host answered %q to an upload", ready.Type)
	}
	if _, err := fh.Seek(ready.Offset, io.SeekStart); err != nil {
		return ready, err
	}
	buf := make([]byte, protocol.FileChunk)
	sent := ready.Offset
	// What the user's computer says it has written, which lags what was
	// sent by megabytes on their way; a host that does not tell is
	// taken to have what has left here.
	written, told := ready.Offset, ready.Progress
	report := func() {
		if progress == nil {
			return
		}
		if told {
			progress(written, size)
		} else {
			progress(sent-f.flow.Buffered(), size)
		}
	}
	// heard takes in a message from the host: progress, or the end.
	heard := func(msg protocol.FileMessage) (end bool) {
		if msg.Type == protocol.FileProgress && msg.Offset <= size {
			written = max(written, msg.Offset)
			return false
		}
		return true
	}
	report()
	for sent < size {
		n, err := io.ReadFull(fh, buf[:min(int64(len(buf)), size-sent)])
		if err != nil {
			return ready, f.cancel(ctx, fmt.Errorf("read %s: %w", local, err))
		}
		// Stop at once if the host refused mid-way (disk full, revoked).
		select {
		case m := <-f.in:
			if msg, derr := protocol.DecodeFile(m.Data); derr == nil && m.IsString && heard(msg) {
				if msg.Type == protocol.FileError {
					return msg, &FileError{Code: msg.Code, Message: msg.Message}
				}
				return msg, f.cancel(ctx, fmt.Errorf("the host answered %q before the end of %s", msg.Type, name))
			}
		default:
		}
		if err := f.flow.Send(ctx, buf[:n]); err != nil {
			return ready, f.cancel(ctx, f.closedErr(err))
		}
		sent += int64(n)
		report()
	}
	// The last megabytes arrive while the host's answer is awaited, told
	// as they are written.
	var done protocol.FileMessage
	for {
		if done, err = f.reply(ctx); err != nil {
			return done, f.cancel(ctx, err)
		}
		if heard(done) {
			break
		}
		report()
	}
	if progress != nil {
		progress(size, size)
	}
	if done.Type != protocol.FileDone || done.SHA256 != sum {
		return done, fmt.Errorf("the host did not confirm %s (got %q, sha256 %s)", name, done.Type, done.SHA256)
	}
	return done, nil
}

// PartSuffix marks a download in progress next to its destination; an
// interrupted pull resumes from it.
const PartSuffix = ".tether-part"

// openPart opens (or creates) the partial file of a download. Only a
// regular file is taken: a link there, which anyone who can write to the
// folder may have put, would make the download read, cut short and write
// the file it points to.
func openPart(part string) (*os.File, error) {
	notPart := fmt.Errorf("%s is not a partial download (it is a link or a special file); remove it or choose another name", part)
	// Looked at before opening, which would create the file a dangling
	// link points to; and after, in case a link was put there meanwhile.
	if st, err := os.Lstat(part); err == nil && !st.Mode().IsRegular() {
		return nil, notPart
	}
	out, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	opened, err := out.Stat()
	if err != nil {
		out.Close()
		return nil, err
	}
	if named, err := os.Lstat(part); err != nil || !opened.Mode().IsRegular() || !os.SameFile(opened, named) {
		out.Close()
		return nil, notPart
	}
	return out, nil
}

// Pull downloads a file under the user's shared root into local, resuming
// from local+PartSuffix when an earlier pull was cut off. The file is
// moved into place only after its SHA-256 matched the host's; an existing
// local file is never replaced.
func (f *Files) Pull(ctx context.Context, remote, local string, progress Progress) (protocol.FileMessage, error) {
	ctx, cancel := f.whileConnected(ctx)
	defer cancel()
	m, err := f.pull(ctx, remote, local, progress)
	return m, f.explain(err)
}

func (f *Files) pull(ctx context.Context, remote, local string, progress Progress) (protocol.FileMessage, error) {
	if _, err := os.Lstat(local); err == nil {
		return protocol.FileMessage{}, fmt.Errorf("%s exists; choose another name", local)
	}
	part := local + PartSuffix
	out, err := openPart(part)
	if err != nil {
		return protocol.FileMessage{}, err
	}
	defer out.Close()
	h := sha256.New()
	have, err := io.Copy(h, whileOn{ctx, out})
	if err != nil {
		return protocol.FileMessage{}, fmt.Errorf("read %s: %w", part, err)
	}
	resumed := have > 0
	if err := f.send(ctx, protocol.FileMessage{Type: protocol.FileGet, Path: remote, Offset: have}); err != nil {
		return protocol.FileMessage{}, err
	}
	meta, err := f.reply(ctx)
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) && have == 0 {
			out.Close()
			os.Remove(part)
		}
		return meta, f.cancel(ctx, err)
	}
	if meta.Type != protocol.FileMeta {
		return meta, fmt.Errorf("the host answered %q to a download", meta.Type)
	}
	if meta.Offset > have || meta.Offset > meta.Size {
		return meta, f.cancel(context.Background(), fmt.Errorf("the host offered %s from byte %d of %d, past the %d bytes kept here", remote, meta.Offset, meta.Size, have))
	}
	if meta.Offset < have { // the file is shorter now than what was kept
		if err := out.Truncate(meta.Offset); err != nil {
			return meta, err
		}
		h.Reset()
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return meta, err
		}
		if _, err := io.CopyN(h, whileOn{ctx, out}, meta.Offset); err != nil {
			return meta, fmt.Errorf("read %s: %w", part, err)
		}
		have = meta.Offset
	}
	// Refused before it starts rather than when the disk is full, with
	// part of the file filling it.
	if free := freeSpace(filepath.Dir(part)); free >= 0 && meta.Size-have > free {
		if have == 0 {
			out.Close()
			os.Remove(part)
		}
		return meta, f.abandon(&FileError{Code: protocol.FileErrNoSpace, Message: fmt.Sprintf(
			"Your disk is full: %s needs %d bytes more in %s, and %d are free.", path.Base(remote), meta.Size-have, filepath.Dir(part), free)})
	}
	if _, err := out.Seek(have, io.SeekStart); err != nil {
		return meta, err
	}
	if progress != nil {
		progress(have, meta.Size)
	}
	for have < meta.Size {
		m, err := f.next(ctx)
		if err != nil {
			return meta, f.cancel(ctx, err)
		}
		if m.IsString {
			msg, derr := protocol.DecodeFile(m.Data)
			if derr == nil && msg.Type == protocol.FileError {
				return msg, &FileError{Code: msg.Code, Message: msg.Message}
			}
			return msg, fmt.Errorf("the host sent %q in the middle of %s", msg.Type, remote)
		}
		if have+int64(len(m.Data)) > meta.Size {
			return meta, f.cancel(context.Background(), fmt.Errorf("the host sent more than the %d bytes of %s", meta.Size, remote))
		}
		if _, err := out.Write(m.Data); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				err = &FileError{Code: protocol.FileErrNoSpace, Message: fmt.Sprintf(
					"Your disk is full: %s stopped at %d of %d bytes. Free some space and run the same command again to carry on.", path.Base(remote), have, meta.Size)}
			}
			return meta, f.abandon(err) // the write error already names the file
		}
		h.Write(m.Data)
		have += int64(len(m.Data))
		if progress != nil {
			progress(have, meta.Size)
		}
	}
	done, err := f.reply(ctx)
	if err != nil {
		return done, f.cancel(ctx, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if done.Type != protocol.FileDone || done.SHA256 != got {
		out.Close()
		os.Remove(part)
		if resumed {
			return done, &FileError{Code: protocol.FileErrHash, Message: fmt.Sprintf("%s did not match the host's copy (SHA-256 %s, the host has %s): "+
				"the part kept from an earlier download was likely of another version of the file. It was discarded; run the same command again to download it whole.", remote, got, done.SHA256)}
		}
		return done, &FileError{Code: protocol.FileErrHash, Message: fmt.Sprintf("%s arrived damaged (SHA-256 %s, the host has %s) and was discarded", remote, got, done.SHA256)}
	}
	if err := out.Sync(); err != nil {
		return done, err
	}
	out.Close()
	// A hard link takes the name only if it is free. File systems without
	// links (FAT and exFAT on USB sticks, some SMB shares) refuse it with
	// an error of their own: there the name is reserved, and the part
	// renamed onto it.
	err = os.Link(part, local)
	if err == nil {
		os.Remove(part)
	} else if !errors.Is(err, fs.ErrExist) {
		err = reserve.Rename(part, local)
	}
	if err != nil {
		return done, fmt.Errorf("move %s into place: %w", local, err)
	}
	return done, nil
}
