package relay

import (
	"reflect"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typed []string // keystrokes, as the relay sees them in messages
		want  []string
	}{
		{"one command", []string{"ls -la\r"}, []string{"ls -la"}},
		{"key by key", []string{"u", "n", "a", "m", "e", "\r"}, []string{"uname"}},
		{"two at once", []string{"cd /tmp\rpwd\r"}, []string{"cd /tmp", "pwd"}},
		{"backspace", []string{"lss\x7f -l\r"}, []string{"ls -l"}},
		{"backspace over a multi-byte character", []string{"echo é\x7fe\r"}, []string{"echo e"}},
		{"ctrl+c drops the line", []string{"rm -rf /\x03", "echo hi\r"}, []string{"echo hi"}},
		{"arrows and function keys are skipped", []string{"\x1b[Agit st\x1b[D\x1bOPatus\r"}, []string{"git status"}},
		{"an escape sequence split across messages", []string{"df\x1b[", "1;5C -h\r"}, []string{"df -h"}},
		{"empty lines are not commands", []string{"\r  \r\n"}, nil},
		{"tab is dropped", []string{"cat /etc/hos\tts\r"}, []string{"cat /etc/hosts"}},
		{"unfinished lines are not reported", []string{"sudo reboot"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c commandLine
			var got []string
			for _, m := range tc.typed {
				c.feed([]byte(m), func(cmd string) { got = append(got, cmd) })
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("long lines are cut", func(t *testing.T) {
		var c commandLine
		var got string
		c.feed([]byte(strings.Repeat("x", 10*maxCommand)+"\r"), func(cmd string) { got = cmd })
		if len(got) != maxCommand {
			t.Fatalf("command of %d bytes, want %d", len(got), maxCommand)
		}
	})
}

// TestCommandLineHidden: a line typed while the host says its terminal
// does not show input (a password) is not a command, whether the host
// said so before the line or after its first keystroke.
func TestCommandLineHidden(t *testing.T) {
	type step struct {
		typed  string
		hidden *bool // the host's word, before the keystrokes
	}
	on, off := true, false
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"a password after the prompt hid input", []step{{"sudo apt update\r", nil}, {"hunter2\r", &on}, {"ls\r", &off}}, []string{"sudo apt update", "ls"}},
		{"hidden after the first keystroke", []step{{"h", nil}, {"unter2\r", &on}, {"pwd\r", &off}}, []string{"pwd"}},
		{"shown again halfway through the line", []step{{"hun", &on}, {"ter2\r", &off}, {"id\r", nil}}, []string{"id"}},
		{"bash's prompt shows input again before the next command", []step{{"hunter2\r", &on}, {"", &off}, {"uptime\r", nil}}, []string{"uptime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c commandLine
			var got []string
			for _, s := range tc.steps {
				if s.hidden != nil {
					c.setHidden(*s.hidden)
				}
				c.feed([]byte(s.typed), func(cmd string) { got = append(got, cmd) })
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCommandLineFullScreen: keys typed in a full-screen program (less,
// vim, top: the host's output switches to the alternate screen) are not
// commands, and do not run into the next command at the prompt.
func TestCommandLineFullScreen(t *testing.T) {
	type step struct{ out, typed string }
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"less", []step{{"", "less /var/log/syslog\r"}, {"\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=", "G/error\rq"},
			{"\r\x1b[K\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;0t", "echo done\r"}}, []string{"less /var/log/syslog", "echo done"}},
		{"vim", []step{{"", "vim /etc/hosts\r"}, {"\x1b[?1049h", "o10.0.0.7 printer\x1b:wq\r"}, {"\x1b[?1049l", "ping -c1 printer\r"}},
			[]string{"vim /etc/hosts", "ping -c1 printer"}},
		{"older switches", []step{{"\x1b[?47h", "x\r"}, {"\x1b[?47l", "ls\r"}, {"\x1b[?1047h", "y\r"}, {"\x1b[?1047l", "pwd\r"}}, []string{"ls", "pwd"}},
		{"a switch split across outputs", []step{{"text\x1b[?10", ""}, {"49h", "q"}, {"\x1b", ""}, {"[?1049l", "id\r"}}, []string{"id"}},
		{"other modes are not a screen switch", []step{{"\x1b[?2004h\x1b[?25l\x1b[?1h", "uptime\r"}}, []string{"uptime"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c commandLine
			var got []string
			for _, s := range tc.steps {
				c.output([]byte(s.out))
				c.feed([]byte(s.typed), func(cmd string) { got = append(got, cmd) })
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
