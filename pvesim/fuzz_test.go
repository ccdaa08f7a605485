package pvesim

import (
	"bytes"
	"maps"
	"net/http/httptest"
	"slices"
	"testing"
)

// FuzzParams: the simulator's request parameters, from the query and a form
// or JSON body, then Proxmox's schema validation of one of its routes. A
// client's parameters are refused with a parameter error or accepted; the
// parser and the validator never panic.
func FuzzParams(f *testing.F) {
	f.Add("vmid=100&node=pve1", "application/x-www-form-urlencoded", []byte("name=web-1&cores=2&memory=2048&net0=virtio,bridge=vmbr0"), uint16(0))
	f.Add("", "application/json", []byte(`{"vmid":100,"cores":"2","onboot":true,"description":null,"tags":"a;b"}`), uint16(7))
	f.Add("", "", []byte(`{"scsi0":"local-lvm:8,iothread=1","ipconfig0":"ip=dhcp"}`), uint16(20))
	f.Add("full=1&newid=%ff", "text/plain", []byte("%zz"), uint16(3))
	f.Add("", "application/json", []byte(`{"a":[1,{"b":2}]`), uint16(1))
	routes := slices.Sorted(maps.Keys(pveRoutes))
	f.Fuzz(func(t *testing.T, rawQuery, contentType string, body []byte, route uint16) {
		r := httptest.NewRequest("POST", "/api2/json/nodes/pve1/qemu", bytes.NewReader(body))
		r.URL.RawQuery = rawQuery
		r.Header["Content-Type"] = []string{contentType}
		p, err := parseParams(r)
		if err != nil {
			if _, ok := err.(*apiError); !ok {
				t.Fatalf("%q %q: %T %v, want a parameter error", rawQuery, body, err, err)
			}
			return
		}
		pveRoutes[routes[int(route)%len(routes)]].Validate(p)
	})
}
