package relay

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval bounds how often viewers can make the host send a
// keyframe: a burst of requests from several viewers costs one keyframe.
const keyframeInterval = 300 * time.Millisecond

// RequestKeyframe asks the host for a keyframe: at once, or when
// keyframeInterval has passed since the last request, so that a request
// made meanwhile (a viewer just allowed to see) is late but never lost.
func (s *Session) RequestKeyframe() {
	s.mu.Lock()
	host, ssrc := s.host, s.hostSSRC
	if host == nil || ssrc == 0 || s.closed || s.keyPending {
		s.mu.Unlock()
		return
	}
	if wait := keyframeInterval - time.Since(s.lastKey); wait > 0 {
		s.keyPending = true
		s.mu.Unlock()
		time.AfterFunc(wait, func() {
			s.mu.Lock()
			s.keyPending = false
			s.mu.Unlock()
			s.RequestKeyframe()
		})
		return
	}
	s.lastKey = time.Now()
	s.mu.Unlock()
	if err := host.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}}); err != nil {
		s.cfg.Logger.Debug("keyframe request", "err", err)
	}
}

// readViewerRTCP turns a viewer's full intra requests into keyframe
// requests, and its picture-loss reports too unless the viewer is known
// to have lost nothing. Chromium reports picture loss whenever no frame
// came for about three seconds, which on a still screen is always; every
// keyframe restarted its timer, so a still screen cost a keyframe every
// three seconds. Its receiver reports say whether it really misses
// something.
func (s *Session) readViewerRTCP(v *Viewer, sender *webrtc.RTPSender) {
	var ssrc uint32
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if r.SSRC == ssrc {
						v.received(r)
					}
				}
			case *rtcp.FullIntraRequest:
				v.requestKeyframe()
			case *rtcp.PictureLossIndication:
				v.pictureLost()
			}
		}
	}
}

// received notes what the viewer's latest receiver report says.
func (v *Viewer) received(r rtcp.ReceptionReport) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.report = r
	v.reported = true
}

// requestKeyframe asks the host for a keyframe for this viewer, noting
// how many packets the viewer had lost by then.
func (v *Viewer) requestKeyframe() {
	v.mu.Lock()
	v.keyframeAsked = true
	v.lostAtAsk = v.report.TotalLost
	v.sentSinceAsk = false
	v.mu.Unlock()
	v.s.RequestKeyframe()
}

// pictureLost passes the viewer's keyframe request on, unless video was
// forwarded to it since the last keyframe asked for it and its latest
// report shows that every packet arrived and none was lost since: then it
// misses nothing, and only its timer spoke.
func (v *Viewer) pictureLost() {
	v.mu.Lock()
	upToDate := v.keyframeAsked && v.sentSinceAsk && v.reported &&
		uint16(v.report.LastSequenceNumber) == v.lastSeq && v.report.TotalLost == v.lostAtAsk
	v.mu.Unlock()
	if !upToDate {
		v.requestKeyframe()
	}
}
