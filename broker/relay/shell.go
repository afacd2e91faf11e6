package relay

// ShellTap sees the terminal traffic the relay forwards, for the session
// recording. channel names one shell uniquely within the session:
// "<label>.<viewerID>", e.g. "shell-1.v_Xq3f9a2b1c0d". Calls for one
// channel come in order; ShellData's data must not be kept after the call
// returns.
type ShellTap interface {
	ShellOpened(channel string, viewerID string, cols, rows int)
	ShellData(channel string, fromHost bool, data []byte)
	ShellResized(channel string, cols, rows int)
	ShellClosed(channel string)
}
