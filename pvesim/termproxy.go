package pvesim

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The container console is termproxy (pve-xtermjs) in front of
// lxc-console: the client's first line is "user:ticket\n", checked as
// /access/ticket's verify_auth does (a VNC ticket for /vms/{vmid}, a login
// ticket or the password) and answered "OK"; then input arrives as
// "0:LEN:DATA", "1:COLS:ROWS:" (resize) and "2" (ping), in any framing,
// and output is the terminal's raw bytes. Behind it sits a tiny shell.

const termMaxLine = 4096

// serveTerminal runs one termproxy client; the answer is the worker's
// failure, if any.
func (s *Simulator) serveTerminal(sess *consoleSession, stream *wsStream) string {
	r := bufio.NewReader(stream)
	line, err := readLimited(r, '\n', termMaxLine)
	if err != nil {
		return "failed waiting for client: " + err.Error()
	}
	user, secret, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
	if !s.verifyTermAuth(user, secret, fmt.Sprintf("/vms/%d", sess.vmid)) {
		return "authentication failed"
	}
	if _, err := io.WriteString(stream, "OK"); err != nil {
		return ""
	}
	state, name, ok := s.guestState(sess.vmid)
	if !ok || state == StatusStopped {
		// lxc-console exits at once and so does termproxy.
		return fmt.Sprintf("command '/usr/bin/termproxy %d --path /vms/%d --perm VM.Console -- /usr/bin/dtach -A /var/run/dtach/vzctlconsole%d -r winch -z lxc-console -n %d -e -1' failed: exit code 1",
			sess.port, sess.vmid, sess.vmid, sess.vmid)
	}
	done := make(chan struct{})
	defer close(done)
	go s.watchGuest(sess.vmid, stream, done)

	sh := &tinyShell{host: name, out: stream}
	sh.banner()
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return ""
		}
		switch typ {
		case '0':
			n, err := readNumberField(r)
			if err != nil {
				return ""
			}
			data := make([]byte, n)
			if _, err := io.ReadFull(r, data); err != nil {
				return ""
			}
			if !sh.input(data) {
				return ""
			}
		case '1':
			// "1:COLS:ROWS:": sizes that are not numbers (go-proxmox sends
			// -1 without a tty) leave the pty as it is.
			if b, err := r.ReadByte(); err != nil || b != ':' {
				return ""
			}
			if _, err := readLimited(r, ':', 12); err != nil {
				return ""
			}
			if _, err := readLimited(r, ':', 12); err != nil {
				return ""
			}
		case '2':
		default:
			return ""
		}
	}
}

// verifyTermAuth is verify_auth of /access/ticket with path and privs.
func (s *Simulator) verifyTermAuth(user, secret, path string) bool {
	if s.verifyVNCTicket(secret, user, path) {
		return true
	}
	if tu, ok := s.verifyTicket(secret); ok && tu == user {
		return true
	}
	return user == s.opts.User && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.Password)) == 1
}

// readNumberField reads ":N:", the length of a data message.
func readNumberField(r *bufio.Reader) (int, error) {
	if b, err := r.ReadByte(); err != nil || b != ':' {
		return 0, fmt.Errorf("malformed message")
	}
	s, err := readLimited(r, ':', 12)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, ":"))
	if err != nil || n < 0 || n > wsMaxPayload {
		return 0, fmt.Errorf("malformed number")
	}
	return n, nil
}

func readLimited(r *bufio.Reader, delim byte, max int) (string, error) {
	var sb strings.Builder
	for sb.Len() < max {
		b, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		sb.WriteByte(b)
		if b == delim {
			return sb.String(), nil
		}
	}
	return "", fmt.Errorf("line too long")
}

// tinyShell is a line-editing shell with a few commands: enough for a
// client to type a command and read its output.
type tinyShell struct {
	host string
	out  io.Writer
	line []byte
}

func (sh *tinyShell) write(s string) { _, _ = io.WriteString(sh.out, s) }

func (sh *tinyShell) prompt() { sh.write("root@" + sh.host + ":~# ") }

func (sh *tinyShell) banner() {
	sh.write("\r\nDebian GNU/Linux 12 " + sh.host + " tty1\r\n\r\n" + sh.host + " login: root (automatic login)\r\n\r\n")
	sh.prompt()
}

// input echoes and interprets typed bytes; false once the shell exits.
func (sh *tinyShell) input(data []byte) bool {
	for _, b := range data {
		switch {
		case b == '\r' || b == '\n':
			sh.write("\r\n")
			cmd := strings.TrimSpace(string(sh.line))
			sh.line = sh.line[:0]
			if cmd == "exit" || cmd == "logout" {
				sh.write("logout\r\n")
				return false
			}
			sh.run(cmd)
			sh.prompt()
		case b == 0x7f || b == 0x08:
			if len(sh.line) > 0 {
				sh.line = sh.line[:len(sh.line)-1]
				sh.write("\b \b")
			}
		case b == 0x03: // Ctrl-C
			sh.line = sh.line[:0]
			sh.write("^C\r\n")
			sh.prompt()
		case b >= 0x20 && b < 0x7f && len(sh.line) < termMaxLine:
			sh.line = append(sh.line, b)
			sh.out.Write([]byte{b}) //nolint:errcheck // the reader notices a dead stream
		}
	}
	return true
}

func (sh *tinyShell) run(cmd string) {
	fields := strings.Fields(cmd)
	if len(fields) == 0 {
		return
	}
	switch fields[0] {
	case "hostname":
		sh.write(sh.host + "\r\n")
	case "whoami":
		sh.write("root\r\n")
	case "echo":
		sh.write(strings.Join(fields[1:], " ") + "\r\n")
	case "uname":
		if len(fields) > 1 && fields[1] == "-a" {
			sh.write("Linux " + sh.host + " 6.8.12-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-1 x86_64 GNU/Linux\r\n")
		} else {
			sh.write("Linux\r\n")
		}
	case "help":
		sh.write("commands: echo hostname whoami uname exit\r\n")
	default:
		sh.write("-bash: " + fields[0] + ": command not found\r\n")
	}
}
