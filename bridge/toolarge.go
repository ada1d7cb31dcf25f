package bridge

import (
	"errors"
	"fmt"

	"github.com/weirmq/weir/mqtt"
)

// isTooLarge reports whether err is the upstream reader's refusal of a
// packet above the local Maximum Packet Size.
func isTooLarge(err error) bool {
	var re *mqtt.ReasonError
	return errors.As(err, &re) && re.Code == mqtt.PacketTooLarge
}

// dropTooLarge reads past an upstream PUBLISH larger than the local
// broker takes, counts it as dropped (too_large) and acknowledges it
// upstream so that it is not sent again. An MQTT 5.0 upstream was told the
// limit in CONNECT and should not send one; a 3.1.1 upstream cannot be
// told. Without this, the connection would end at such a message, and the
// upstream would send it first again at every reconnection: one message
// would stop the bridge both ways for good. Other packets that large end
// the connection.
func (r *relay) dropTooLarge() error {
	head, total, err := r.up.rd.SkipPacket()
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	qos, topic, pid, err := mqtt.PublishHeader(head)
	if err != nil {
		return fmt.Errorf("upstream sent a packet of %d bytes, above the local maximum packet size: %w", total, err)
	}
	b := r.b
	ri := b.inRule(string(topic))
	b.stats.dropIn(ri, "too_large")
	b.log.Warn("upstream message above the local maximum packet size dropped", "topic", string(topic),
		"bytes", total, "max_packet_size", b.srv.Options().MaxPacketSize)
	// MQTT 5.0: refused (an error code ends a QoS 2 exchange at PUBREC);
	// 3.1.1 has no codes: acknowledged, and a QoS 2 exchange completed.
	rc := mqtt.ReasonCode(0)
	if b.cfg.Version == mqtt.V5 {
		rc = mqtt.QuotaExceeded // 0x95 is not a PUBACK/PUBREC code; 0x97: a limit of the receiver
	}
	switch qos {
	case 1:
		return r.up.queue(&mqtt.Puback{PacketID: pid, ReasonCode: rc})
	case 2:
		if !rc.IsError() {
			r.upOnly[pid] = true
		}
		return r.up.queue(&mqtt.Pubrec{PacketID: pid, ReasonCode: rc})
	}
	return nil
}
