package dottest

import (
	"time"

	"golang.org/x/net/http2"
)

// h2settings are the settings one side keeps to.
type h2settings struct {
	maxStreams uint32 // 0: no limit
	window     int64
	frameSize  uint32
	tableSize  uint32
	sentAt     time.Time
}

func defaultH2Settings() h2settings {
	return h2settings{window: h2DefaultWindow, frameSize: h2DefaultFrameSize, tableSize: h2DefaultTableSize}
}

// apply returns s changed by settings.
func (s h2settings) apply(settings []http2.Setting) h2settings {
	for _, st := range settings {
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			s.maxStreams = st.Val
		case http2.SettingInitialWindowSize:
			s.window = int64(st.Val)
		case http2.SettingMaxFrameSize:
			s.frameSize = st.Val
		case http2.SettingHeaderTableSize:
			s.tableSize = st.Val
		}
	}
	return s
}

// peerSettings obeys the client's SETTINGS and ACKs them.
func (c *h2rawConn) peerSettings(f *http2.SettingsFrame) {
	var settings []http2.Setting
	_ = f.ForeachSetting(func(s http2.Setting) error {
		settings = append(settings, s)
		return nil
	})
	c.wmu.Lock()
	c.mu.Lock()
	old := c.peer
	c.peer = c.peer.apply(settings)
	for _, st := range c.streams {
		st.sendWin += c.peer.window - old.window
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if c.peer.tableSize != old.tableSize {
		c.enc.SetMaxDynamicTableSizeLimit(c.peer.tableSize)
	}
	c.wmu.Unlock()
	c.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
}

// sendSettings sends settings now, or once the SETTINGS in flight is
// ACKed: one at a time keeps what the client may do clear. Until the
// ACK, the client may keep to the old values or the new, whichever
// allow more.
func (c *h2rawConn) sendSettings(settings []http2.Setting) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.inflight != nil {
		c.queued = append(c.queued, settings)
		c.mu.Unlock()
		return
	}
	next := c.cur.apply(settings)
	next.sentAt = time.Now()
	c.inflight = &next
	if grow := next.window - c.cur.window; grow > 0 {
		for _, st := range c.streams {
			st.recvWin += grow
		}
	}
	c.mu.Unlock()
	c.writeLocked(func(fr *http2.Framer) error { return fr.WriteSettings(settings...) })
}

// settingsAcked makes the SETTINGS in flight the client's rules, and
// sends the next one queued.
func (c *h2rawConn) settingsAcked() {
	c.mu.Lock()
	if c.inflight == nil {
		c.mu.Unlock()
		c.violation("SETTINGS ACK for no SETTINGS")
		return
	}
	next := *c.inflight
	if shrink := next.window - c.cur.window; shrink < 0 {
		for _, st := range c.streams {
			st.recvWin += shrink
		}
	}
	if next.tableSize < c.cur.tableSize {
		// The client's next header block must start by shrinking its
		// table; one that goes on using it fails to decode.
		c.dec.SetMaxDynamicTableSize(next.tableSize)
	}
	c.dec.SetAllowedMaxDynamicTableSize(next.tableSize)
	c.cur, c.inflight = next, nil
	var queued []http2.Setting
	if len(c.queued) > 0 {
		queued = c.queued[0]
		c.queued = c.queued[1:]
	}
	c.mu.Unlock()
	c.srv.settingsAcks.Add(1)
	if queued != nil {
		c.sendSettings(queued)
	}
}

// laxFrameSizeLocked is the largest frame the client may send now.
func (c *h2rawConn) laxFrameSizeLocked() uint32 {
	if c.inflight != nil {
		return max(c.cur.frameSize, c.inflight.frameSize)
	}
	return c.cur.frameSize
}

func (c *h2rawConn) laxFrameSize() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.laxFrameSizeLocked()
}

// laxMaxStreamsLocked is how many streams the client may have open now
// (0: no limit).
func (c *h2rawConn) laxMaxStreamsLocked() uint32 {
	limit := c.cur.maxStreams
	if c.inflight != nil && (limit == 0 || c.inflight.maxStreams == 0) {
		return 0
	}
	if c.inflight != nil {
		limit = max(limit, c.inflight.maxStreams)
	}
	return limit
}

// laxWindowLocked is the window a new stream starts with.
func (c *h2rawConn) laxWindowLocked() int64 {
	if c.inflight != nil {
		return max(c.cur.window, c.inflight.window)
	}
	return c.cur.window
}

// ping sends a PING of the server's own; goAway marks the one after a
// GOAWAY.
func (c *h2rawConn) ping(goAway bool) {
	c.mu.Lock()
	c.pingSeq++
	data := [8]byte{'d', 'o', 't', 'p', 0, 0, byte(c.pingSeq >> 8), byte(c.pingSeq)}
	if goAway {
		data = goAwayPing
	}
	c.mu.Unlock()
	c.write(func(fr *http2.Framer) error {
		c.mu.Lock()
		c.pings[data] = time.Now()
		c.mu.Unlock()
		return fr.WritePing(false, data)
	})
}

func (c *h2rawConn) pingAcked(data [8]byte) {
	c.mu.Lock()
	_, ok := c.pings[data]
	delete(c.pings, data)
	if data == goAwayPing {
		c.goSeen = true
	}
	c.mu.Unlock()
	if !ok {
		c.violation("PING ACK %q for no PING", data[:])
		return
	}
	c.srv.pingAcks.Add(1)
}

// checkAcks records the SETTINGS and PINGs the client has left unACKed
// for ackWait, once each.
func (c *h2rawConn) checkAcks(now time.Time) {
	if c.silent.Load() {
		return
	}
	c.mu.Lock()
	var late []string
	if c.inflight != nil && !c.inflight.sentAt.IsZero() && now.Sub(c.inflight.sentAt) > ackWait {
		late = append(late, "SETTINGS")
		c.inflight.sentAt = time.Time{}
	}
	for data, at := range c.pings {
		if now.Sub(at) > ackWait {
			late = append(late, "PING")
			delete(c.pings, data)
		}
	}
	c.mu.Unlock()
	for _, what := range late {
		c.violation("%s not ACKed within %v", what, ackWait)
	}
}
