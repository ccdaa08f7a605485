package pvesim

import (
	"bufio"
	"crypto/des"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
)

// The qemu console is a small RFB 3.8 server shaped like QEMU's own VNC
// server behind "qm vncproxy": version 3.8 (3.3 and 3.7 accepted), one
// security type (2, VNC authentication with the password vncproxy set),
// QEMU's failure text "Authentication failed" (sent with its trailing NUL,
// as QEMU does), desktop name "QEMU (<vm name>)" and QEMU's default pixel
// format. Updates are raw rectangles of a framebuffer showing the guest's
// name, its status and the keys typed so far.
const (
	rfbWidth  = 640
	rfbHeight = 400
)

// rfbBackground is the framebuffer's solid colour; clients can check it.
var rfbBackground = [3]byte{0x1e, 0x3a, 0x5f}

type pixelFormat struct {
	bpp, depth, bigEndian, trueColour uint8
	redMax, greenMax, blueMax         uint16
	redShift, greenShift, blueShift   uint8
}

// qemuPixelFormat is QEMU's default: 32 bpp, depth 24, little endian.
var qemuPixelFormat = pixelFormat{bpp: 32, depth: 24, trueColour: 1,
	redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0}

func (pf pixelFormat) bytes() []byte {
	b := make([]byte, 16)
	b[0], b[1], b[2], b[3] = pf.bpp, pf.depth, pf.bigEndian, pf.trueColour
	binary.BigEndian.PutUint16(b[4:], pf.redMax)
	binary.BigEndian.PutUint16(b[6:], pf.greenMax)
	binary.BigEndian.PutUint16(b[8:], pf.blueMax)
	b[10], b[11], b[12] = pf.redShift, pf.greenShift, pf.blueShift
	return b
}

func parsePixelFormat(b []byte) pixelFormat {
	return pixelFormat{bpp: b[0], depth: b[1], bigEndian: b[2], trueColour: b[3],
		redMax: binary.BigEndian.Uint16(b[4:]), greenMax: binary.BigEndian.Uint16(b[6:]),
		blueMax: binary.BigEndian.Uint16(b[8:]), redShift: b[10], greenShift: b[11], blueShift: b[12]}
}

// vncAuthResponse is the DES encryption of challenge with password as the
// key, each key byte bit-reversed (the RFB quirk); exported to tests.
func vncAuthResponse(password string, challenge []byte) []byte {
	key := make([]byte, 8)
	copy(key, password)
	for i := range key {
		key[i] = bits.Reverse8(key[i])
	}
	block, _ := des.NewCipher(key)
	out := make([]byte, len(challenge))
	for i := 0; i+8 <= len(challenge); i += 8 {
		block.Encrypt(out[i:i+8], challenge[i:i+8])
	}
	return out
}

// serveRFB runs one client; the answer is the worker's failure, if any.
func (s *Simulator) serveRFB(sess *consoleSession, stream *wsStream) string {
	done := make(chan struct{})
	defer close(done)
	go s.watchGuest(sess.vmid, stream, done)

	state, name, ok := s.guestState(sess.vmid)
	if !ok || state == StatusStopped {
		// "qm vncproxy" refuses, the worker logs it and fails.
		s.mu.Lock()
		sess.task.log = append(sess.task.log, fmt.Sprintf("VM %d not running", sess.vmid))
		s.mu.Unlock()
		return "Failed to run vncproxy."
	}
	r := bufio.NewReader(stream)
	if err := rfbHandshake(r, stream, sess.password); err != nil {
		return ""
	}
	if _, err := r.ReadByte(); err != nil { // ClientInit: shared flag
		return ""
	}
	init := make([]byte, 0, 64)
	init = binary.BigEndian.AppendUint16(init, rfbWidth)
	init = binary.BigEndian.AppendUint16(init, rfbHeight)
	init = append(init, qemuPixelFormat.bytes()...)
	desktop := "QEMU (" + name + ")"
	init = binary.BigEndian.AppendUint32(init, uint32(len(desktop)))
	init = append(init, desktop...)
	if _, err := stream.Write(init); err != nil {
		return ""
	}
	fb := &rfbScreen{name: name, pf: qemuPixelFormat}
	_ = fb.serve(s, sess.vmid, r, stream)
	return ""
}

// rfbHandshake negotiates the version and runs VNC authentication.
func rfbHandshake(r *bufio.Reader, w io.Writer, password string) error {
	if _, err := io.WriteString(w, "RFB 003.008\n"); err != nil {
		return err
	}
	ver := make([]byte, 12)
	if _, err := io.ReadFull(r, ver); err != nil {
		return err
	}
	minor := 8
	switch string(ver) {
	case "RFB 003.003\n":
		minor = 3
	case "RFB 003.007\n":
		minor = 7
	case "RFB 003.008\n":
	default:
		return fmt.Errorf("unsupported RFB version %q", ver)
	}
	fail := func() error {
		msg := []byte("Authentication failed\x00")
		out := binary.BigEndian.AppendUint32(nil, 1)
		if minor >= 8 {
			out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
			out = append(out, msg...)
		}
		_, _ = w.Write(out)
		return fmt.Errorf("authentication failed")
	}
	if minor == 3 {
		if _, err := w.Write([]byte{0, 0, 0, 2}); err != nil {
			return err
		}
	} else {
		if _, err := w.Write([]byte{1, 2}); err != nil {
			return err
		}
		choice, err := r.ReadByte()
		if err != nil {
			return err
		}
		if choice != 2 {
			return fail()
		}
	}
	challenge := make([]byte, 16)
	_, _ = rand.Read(challenge)
	if _, err := w.Write(challenge); err != nil {
		return err
	}
	resp := make([]byte, 16)
	if _, err := io.ReadFull(r, resp); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(resp, vncAuthResponse(password, challenge)) != 1 {
		return fail()
	}
	_, err := w.Write([]byte{0, 0, 0, 0})
	return err
}

// rfbScreen is the framebuffer and the client's view of it.
type rfbScreen struct {
	name    string
	typed   string
	pf      pixelFormat
	pending bool // an incremental update request waits for a change
}

func (fb *rfbScreen) serve(s *Simulator, vmid int, r *bufio.Reader, w io.Writer) error {
	buf := make([]byte, 20)
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return err
		}
		switch typ {
		case 0: // SetPixelFormat
			if _, err := io.ReadFull(r, buf[:19]); err != nil {
				return err
			}
			if pf := parsePixelFormat(buf[3:19]); pf.trueColour == 1 && (pf.bpp == 8 || pf.bpp == 16 || pf.bpp == 32) {
				fb.pf = pf
			}
		case 2: // SetEncodings: only raw is ever used
			if _, err := io.ReadFull(r, buf[:3]); err != nil {
				return err
			}
			n := int(binary.BigEndian.Uint16(buf[1:3]))
			if _, err := io.CopyN(io.Discard, r, int64(4*n)); err != nil {
				return err
			}
		case 3: // FramebufferUpdateRequest
			if _, err := io.ReadFull(r, buf[:9]); err != nil {
				return err
			}
			if buf[0] == 0 {
				if err := fb.send(s, vmid, w); err != nil {
					return err
				}
			} else {
				fb.pending = true
			}
		case 4: // KeyEvent: printable keysyms appear on screen, Return clears
			if _, err := io.ReadFull(r, buf[:7]); err != nil {
				return err
			}
			if buf[0] == 1 && fb.key(binary.BigEndian.Uint32(buf[3:7])) && fb.pending {
				if err := fb.send(s, vmid, w); err != nil {
					return err
				}
			}
		case 5: // PointerEvent
			if _, err := io.ReadFull(r, buf[:5]); err != nil {
				return err
			}
		case 6: // ClientCutText
			if _, err := io.ReadFull(r, buf[:7]); err != nil {
				return err
			}
			n := int64(binary.BigEndian.Uint32(buf[3:7]))
			if n < 0 || n > 1<<20 {
				return fmt.Errorf("cut text too long")
			}
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown client message %d", typ)
		}
	}
}

func (fb *rfbScreen) key(sym uint32) bool {
	switch {
	case sym == 0xff0d: // Return
		fb.typed = ""
	case sym == 0xff08: // BackSpace
		if fb.typed == "" {
			return false
		}
		fb.typed = fb.typed[:len(fb.typed)-1]
	case sym >= 0x20 && sym < 0x7f && len(fb.typed) < 32:
		fb.typed += string(rune(sym))
	default:
		return false
	}
	return true
}

// send writes one FramebufferUpdate with the whole screen as a raw rectangle.
func (fb *rfbScreen) send(s *Simulator, vmid int, w io.Writer) error {
	fb.pending = false
	state, _, _ := s.guestState(vmid)
	rgb := renderScreen([]string{fb.name, "STATUS: " + strings.ToUpper(state), "> " + fb.typed})
	bpp := int(fb.pf.bpp) / 8
	out := make([]byte, 0, 16+rfbWidth*rfbHeight*bpp)
	out = append(out, 0, 0, 0, 1)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint16(out, rfbWidth)
	out = binary.BigEndian.AppendUint16(out, rfbHeight)
	out = binary.BigEndian.AppendUint32(out, 0) // raw
	for i := 0; i < len(rgb); i += 3 {
		v := uint32(rgb[i])*uint32(fb.pf.redMax)/255<<fb.pf.redShift |
			uint32(rgb[i+1])*uint32(fb.pf.greenMax)/255<<fb.pf.greenShift |
			uint32(rgb[i+2])*uint32(fb.pf.blueMax)/255<<fb.pf.blueShift
		for b := 0; b < bpp; b++ {
			shift := 8 * b
			if fb.pf.bigEndian != 0 {
				shift = 8 * (bpp - 1 - b)
			}
			out = append(out, byte(v>>shift))
		}
	}
	_, err := w.Write(out)
	return err
}
