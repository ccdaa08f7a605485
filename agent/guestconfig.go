package agent

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Reading PVE guest configuration, whose values come back as JSON numbers
// or strings depending on the key and the PVE version.

func stringOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// intOf reads an integer config value; def when absent or malformed.
func intOf(v any, def int) int {
	switch v := v.(type) {
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

// memoryOf reads qemu's "memory" ("2048", or the PVE 8 property string
// "current=2048,...") or lxc's numeric memory, in MiB; 512 (PVE's default)
// when absent.
func memoryOf(v any) int {
	s := stringOf(v)
	if s == "" {
		return 512
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimPrefix(part, "current=")
		if n, err := strconv.Atoi(part); err == nil {
			return n
		}
	}
	return 0
}

var (
	qemuDiskKey = regexp.MustCompile(`^(scsi|virtio|sata|ide)\d+$`)
	sizeParam   = regexp.MustCompile(`(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)`)
)

// diskOf is a guest's system disk and its size in GB (rounded up): lxc's
// rootfs; for qemu the first disk of the boot order, else the first disk
// found (scsi, virtio, sata, ide), never a CD-ROM.
func diskOf(kind string, cfg map[string]any) (string, int) {
	if kind == kindLXC {
		if v := stringOf(cfg["rootfs"]); v != "" {
			return "rootfs", sizeGB(v)
		}
		return "", 0
	}
	isDisk := func(k string) bool {
		v := stringOf(cfg[k])
		return qemuDiskKey.MatchString(k) && v != "" && !strings.Contains(v, "media=cdrom")
	}
	boot := stringOf(cfg["boot"])
	if order, ok := strings.CutPrefix(boot, "order="); ok {
		for _, k := range strings.Split(order, ";") {
			if isDisk(k) {
				return k, sizeGB(stringOf(cfg[k]))
			}
		}
	}
	if k := stringOf(cfg["bootdisk"]); isDisk(k) {
		return k, sizeGB(stringOf(cfg[k]))
	}
	for _, bus := range []string{"scsi", "virtio", "sata", "ide"} {
		for i := 0; i < 31; i++ {
			if k := bus + strconv.Itoa(i); isDisk(k) {
				return k, sizeGB(stringOf(cfg[k]))
			}
		}
	}
	return "", 0
}

// sizeGB reads the size= parameter of a volume in GiB, rounded up.
func sizeGB(volume string) int {
	m := sizeParam.FindStringSubmatch(volume)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0
	}
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m[2]]
	return int(math.Ceil(f * mult / (1 << 30)))
}

// backoff is the pause before attempt+1: exponential from base, capped at
// maxDelay, with jitter over its upper half.
func backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// sleep pauses for d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
