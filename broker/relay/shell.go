package relay

// ShellTap sees the terminal traffic the relay forwards, for the session recording.
type ShellTap interface {
	ShellOpened(channel string, viewerID string, cols, rows int)
	ShellData(channel string, fromHost bool, data []byte)
	ShellResized(channel string, cols, rows int)
	ShellClosed(channel string)
}
