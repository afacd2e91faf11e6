package input

// keyNames maps a browser's physical key code (KeyboardEvent.code, the
// position of the key on a US keyboard) to the key robotgo presses where
// keys cannot be pressed by position (see xKeycodes): robotgo presses the
// key that types that character on the user's layout, so on a layout
// other than US some keys type what they would on a US keyboard.
var keyNames = map[string]string{
	"Backquote": "`", "Minus": "-", "Equal": "=", "BracketLeft": "[", "BracketRight": "]",
	"Backslash": "\\", "Semicolon": ";", "Quote": "'", "Comma": ",", "Period": ".", "Slash": "/",
	"IntlBackslash": "\\",
	"Backspace":     "backspace", "Tab": "tab", "Enter": "enter", "Escape": "escape", "Space": "space",
	"CapsLock": "capslock", "Delete": "delete", "Insert": "insert", "Home": "home", "End": "end",
	"PageUp": "pageup", "PageDown": "pagedown",
	"ArrowUp": "up", "ArrowDown": "down", "ArrowLeft": "left", "ArrowRight": "right",
	"ShiftLeft": "shiftl", "ShiftRight": "shiftr", "ControlLeft": "ctrll", "ControlRight": "ctrlr",
	"AltLeft": "altl", "AltRight": "altr", "MetaLeft": "cmdl", "MetaRight": "cmdr",
	"ContextMenu": "menu", "PrintScreen": "printscreen", "ScrollLock": "scroll_lock", "Pause": "pause_break",
	"NumLock": "num_lock", "NumpadDivide": "num/", "NumpadMultiply": "num*", "NumpadSubtract": "num-",
	"NumpadAdd": "num+", "NumpadDecimal": "num.", "NumpadEnter": "num_enter", "NumpadEqual": "num_equal",
	"AudioVolumeMute": "audio_mute", "AudioVolumeDown": "audio_vol_down", "AudioVolumeUp": "audio_vol_up",
	"MediaPlayPause": "audio_play", "MediaStop": "audio_stop", "MediaTrackPrevious": "audio_prev", "MediaTrackNext": "audio_next",
}

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		keyNames["Key"+string(c)] = string(c + 'a' - 'A')
	}
	for d := '0'; d <= '9'; d++ {
		keyNames["Digit"+string(d)] = string(d)
		keyNames["Numpad"+string(d)] = "num" + string(d)
	}
	for i := 1; i <= 24; i++ {
		keyNames["F"+itoa(i)] = "f" + itoa(i)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}
