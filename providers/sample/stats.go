package sample

import (
	"sync/atomic"

	"github.com/netext/netext/udpbatch"
)

// Stats counts what an Endpoint did. Packets are the tunnelled IP packets,
// bytes their sizes without the protocol's overhead. All counters only
// grow.
type Stats struct {
	Peer string `json:"peer"` // where packets go, or "" on a server without a client

	TxPackets uint64 `json:"txPackets"` // packets read from the device and handed to the socket
	TxBytes   uint64 `json:"txBytes"`
	RxPackets uint64 `json:"rxPackets"` // packets received and handed to the device
	RxBytes   uint64 `json:"rxBytes"`

	Handshakes         uint64 `json:"handshakes"` // sessions started
	Roams              uint64 `json:"roams"`      // times the server followed its client to a new address
	KeepalivesSent     uint64 `json:"keepalivesSent"`
	KeepalivesReceived uint64 `json:"keepalivesReceived"`

	DroppedAuth      uint64 `json:"droppedAuth"`      // data that failed authentication: wrong key, old session or tampering
	DroppedReplay    uint64 `json:"droppedReplay"`    // data whose counter was seen before or is too old
	DroppedMalformed uint64 `json:"droppedMalformed"` // datagrams that are no protocol message
	DroppedHandshake uint64 `json:"droppedHandshake"` // hellos and acks that failed or were stale
	DroppedNoSession uint64 `json:"droppedNoSession"` // packets with no session to carry them

	DeviceReadErrors  uint64 `json:"deviceReadErrors"`
	DeviceWriteErrors uint64 `json:"deviceWriteErrors"`
	NetReadErrors     uint64 `json:"netReadErrors"`

	GSO bool           `json:"gso"` // UDP segmentation offload in use
	GRO bool           `json:"gro"` // UDP receive coalescing in use
	UDP udpbatch.Stats `json:"udp"`
}

type counters struct {
	txPackets, txBytes, rxPackets, rxBytes                                           atomic.Uint64
	handshakes, roams, keepalivesSent, keepalivesReceived                            atomic.Uint64
	droppedAuth, droppedReplay, droppedMalformed, droppedHandshake, droppedNoSession atomic.Uint64
	deviceReadErrors, deviceWriteErrors, netReadErrors                               atomic.Uint64
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	c := &e.stats
	s := Stats{
		TxPackets:          c.txPackets.Load(),
		TxBytes:            c.txBytes.Load(),
		RxPackets:          c.rxPackets.Load(),
		RxBytes:            c.rxBytes.Load(),
		Handshakes:         c.handshakes.Load(),
		Roams:              c.roams.Load(),
		KeepalivesSent:     c.keepalivesSent.Load(),
		KeepalivesReceived: c.keepalivesReceived.Load(),
		DroppedAuth:        c.droppedAuth.Load(),
		DroppedReplay:      c.droppedReplay.Load(),
		DroppedMalformed:   c.droppedMalformed.Load(),
		DroppedHandshake:   c.droppedHandshake.Load(),
		DroppedNoSession:   c.droppedNoSession.Load(),
		DeviceReadErrors:   c.deviceReadErrors.Load(),
		DeviceWriteErrors:  c.deviceWriteErrors.Load(),
		NetReadErrors:      c.netReadErrors.Load(),
		UDP:                e.conn.Stats(),
	}
	s.GSO, s.GRO = e.conn.Offloads()
	if p := e.Peer(); p.IsValid() {
		s.Peer = p.String()
	}
	return s
}
