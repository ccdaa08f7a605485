package pvesim

import (
	"fmt"
	"strconv"
	"time"
)

// Seeded guests (Options.Guests) stand for the workloads a cluster already
// runs when AccountDB meets it: not AccountDB's (no tags, no description),
// so the agent lists them but manages none. Their sizes are small so that
// thousands fit the default nodes.
const (
	seededQemuMemoryMB = 512
	seededQemuDiskGB   = 2
	seededLXCMemoryMB  = 256
	seededLXCDiskGB    = 1
)

// seedGuests registers n guests under the lowest free vmids from 100,
// spread round-robin over the nodes: every fifth a container, the rest QEMU
// VMs, every fourth stopped and the others running while their node has the
// memory (as PVE would refuse to start one more). It runs in New, before
// any request.
func (s *Simulator) seedGuests(n int) {
	vmid := 100
	memUsed := map[*node]uint64{} // kept as guests start: one pass, not one per guest
	for _, nd := range s.nodes {
		memUsed[nd] = s.nodeMemUsed(nd)
	}
	for i := range n {
		for s.guests[vmid] != nil {
			vmid++
		}
		nd := s.nodes[i%len(s.nodes)]
		kind := kindQemu
		if i%5 == 4 {
			kind = kindLXC
		}
		g := &guest{kind: kind, vmid: vmid, node: nd.name, conf: s.seededConf(kind, vmid), state: StatusStopped}
		s.setGuest(g)
		if mem := g.memoryMB() << 20; i%4 != 3 && !nd.reserved && memUsed[nd]+mem <= nd.memory {
			memUsed[nd] += mem
			s.setState(g, StatusRunning)
			// Booted over the last day, so uptimes differ as they would.
			g.startedAt = s.now().Add(-time.Duration(1+s.rng.IntN(86400)) * time.Second)
			s.taskSeq++
			g.pid = 10000 + int(s.taskSeq)
			g.agentReadyAt = g.startedAt
		}
	}
}

// seededConf is the configuration PVE would hold for a small guest made by
// hand: qemu-server's or pve-container's keys for one disk and one NIC.
func (s *Simulator) seededConf(kind guestKind, vmid int) map[string]string {
	if kind == kindLXC {
		return map[string]string{
			"hostname": "ct-" + strconv.Itoa(vmid), "ostype": "debian", "arch": "amd64",
			"cores": "1", "memory": strconv.Itoa(seededLXCMemoryMB), "swap": "512",
			"rootfs":       fmt.Sprintf("local-lvm:vm-%d-disk-0,size=%dG", vmid, seededLXCDiskGB),
			"net0":         "name=eth0,bridge=vmbr0,hwaddr=" + s.mac() + ",ip=dhcp,type=veth",
			"unprivileged": "1",
		}
	}
	return map[string]string{
		"name": "vm-" + strconv.Itoa(vmid), "ostype": "l26", "cores": "1",
		"memory": strconv.Itoa(seededQemuMemoryMB), "scsihw": "virtio-scsi-pci",
		"scsi0":   fmt.Sprintf("local-lvm:vm-%d-disk-0,size=%dG", vmid, seededQemuDiskGB),
		"net0":    "virtio=" + s.mac() + ",bridge=vmbr0",
		"boot":    "order=scsi0;net0",
		"smbios1": "uuid=" + s.uuid(),
		"vmgenid": s.uuid(),
	}
}
