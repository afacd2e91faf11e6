package rtc

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// PlayoutDelayURI is the RTP header extension through which a sender asks
// the receiver to render frames without delay. Chromium otherwise holds
// each frame 20-50 ms in its jitter buffer and render queue.
const PlayoutDelayURI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"

// zeroPlayoutDelay is min = max = 0: render as soon as decoded.
var zeroPlayoutDelay, _ = rtp.PlayoutDelayExtension{}.Marshal()

type playoutDelayFactory struct{}

func (playoutDelayFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &playoutDelay{}, nil
}

// playoutDelay stamps the extension on every video packet of streams whose
// receiver negotiated it.
type playoutDelay struct{ interceptor.NoOp }

func (*playoutDelay) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, ext := range info.RTPHeaderExtensions {
		if ext.URI == PlayoutDelayURI {
			id = uint8(ext.ID)
		}
	}
	if id == 0 {
		return writer
	}
	return interceptor.RTPWriterFunc(func(header *rtp.Header, payload []byte, attrs interceptor.Attributes) (int, error) {
		if err := header.SetExtension(id, zeroPlayoutDelay); err != nil {
			return 0, err
		}
		return writer.Write(header, payload, attrs)
	})
}
