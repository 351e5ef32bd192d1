package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/dpsconsole/dpsconsole/keys"
)

// mqttHook is the emulator's side of the broker: CONNECT checks, topic
// rules (here) and request handling (mqtt_requests.go).
type mqttHook struct {
	mqtt.HookBase
	e       *Emulator
	connSeq atomic.Uint64 // makes DPS client ids unique
}

func (h *mqttHook) ID() string { return "dpsconsole" }

func (h *mqttHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPacketRead, mqtt.OnPublish:
		return true
	}
	return false
}

// CONNACK return codes of MQTT 3.1.1.
const (
	connackBadProtocol   = 0x01
	connackBadClientID   = 0x02
	connackNotAuthorized = 0x05
)

// OnConnect admits a client like the real service: DPS accepts every
// CONNECT and answers a bad token on the response topic (dps-protocol.md
// §4); a hub checks the device's user name and SAS and refuses with return
// code 5, which the SDKs report as bad credentials. Neither takes a Will.
// An accepted client gets an id of its endpoint's own, so DPS and the hubs
// (and two hubs with the same device id) never share a session, and a
// clean session: the broker keeps nothing for a client after it leaves.
func (h *mqttHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	c := connOf(cl)
	if c == nil {
		return errNotEmulatorConn
	}
	refuse := func(code byte, err error) error {
		if pk.ProtocolVersion == 5 {
			code = packets.ErrUnsupportedProtocolVersion.Code
		}
		cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code})
		return err
	}
	if pk.ProtocolVersion != 4 {
		return refuse(connackBadProtocol, fmt.Errorf("MQTT protocol level %d: the emulator, like IoT Hub and DPS, speaks MQTT 3.1.1 (level 4)", pk.ProtocolVersion))
	}
	if pk.Connect.WillFlag {
		return refuse(connackNotAuthorized, errors.New("a CONNECT with a Will message is refused"))
	}
	if hb := c.ep.hub; hb != nil {
		id, expiry, err := h.e.admitHubDevice(context.Background(), hb, pk.Connect.ClientIdentifier, string(pk.Connect.Username), string(pk.Connect.Password))
		if err != nil {
			h.e.log.Debug("MQTT CONNECT refused", "hub", hb.HostName, "client", pk.Connect.ClientIdentifier, "err", err)
			return refuse(connackNotAuthorized, err)
		}
		c.sess.deviceID, c.sess.expiry = id, expiry
		cl.ID = c.ep.id + "/" + id // one session per device and hub: a new connection takes the old one over
	} else {
		cl.ID = "dps/" + strconv.FormatUint(h.connSeq.Add(1), 10) + "/" + cl.ID // DPS sessions are never shared
	}
	c.sess.password = string(pk.Connect.Password)
	cl.Properties.Clean = true
	if max := uint16(h.e.mqttMaxKeepAlive() / time.Second); cl.State.Keepalive == 0 || cl.State.Keepalive > max {
		cl.State.Keepalive = max
	}
	return nil
}

// OnConnectAuthenticate accepts: OnConnect, which can choose the return
// code, has done the checks.
func (h *mqttHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// admitHubDevice checks a hub CONNECT as IoT Hub does (dps-protocol.md §8a):
// user name {hub}/{deviceId}/?api-version=..., client id = device id, and a
// SAS for {hub}/devices/{deviceId} signed with one of the device's keys (no
// skn) or with the hub's policy key. It returns the device id and the
// token's expiry.
func (e *Emulator) admitHubDevice(ctx context.Context, h *hub, clientID, user, password string) (string, time.Time, error) {
	hubHost, rest, _ := strings.Cut(user, "/")
	deviceID, _, _ := strings.Cut(rest, "/")
	if !h.namedBy(hubHost) {
		return "", time.Time{}, fmt.Errorf("the user name names hub %q, not this hub %q", hubHost, h.HostName)
	}
	if deviceID == "" || deviceID != clientID {
		return "", time.Time{}, fmt.Errorf("the client id %q is not the device id %q of the user name", clientID, deviceID)
	}
	tok, err := keys.ParseSAS(password)
	switch {
	case err != nil:
		return "", time.Time{}, err
	case !time.Now().Before(tok.Expiry):
		return "", time.Time{}, keys.ErrSASExpired
	case !tok.Covers(h.HostName + "/devices/" + deviceID):
		return "", time.Time{}, keys.ErrSASResource
	case tok.KeyName != "" && !strings.EqualFold(tok.KeyName, h.PolicyName):
		return "", time.Time{}, fmt.Errorf("policy %q is not this hub's", tok.KeyName)
	}
	d, err := e.store.hubDevice(ctx, h.Index, deviceID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("device %q: %w", deviceID, err)
	}
	signed := signedByDevice(tok, d)
	if tok.KeyName != "" {
		signed = tok.SignatureMatches(h.key)
	}
	switch {
	case !signed:
		return "", time.Time{}, keys.ErrSASSignature
	case d.Status == "disabled":
		return "", time.Time{}, fmt.Errorf("device %q is disabled", deviceID)
	}
	return d.DeviceID, tok.Expiry, nil
}

// namedBy says whether a client's name for the hub is this hub: its host
// name, with or without the port.
func (h *hub) namedBy(name string) bool {
	if strings.EqualFold(name, h.HostName) {
		return true
	}
	host, _, err := net.SplitHostPort(h.HostName)
	return err == nil && strings.EqualFold(name, host)
}

// OnPacketRead refuses, by closing the connection before anything is
// acknowledged, what neither IoT Hub nor DPS takes: QoS 2 and retained
// publishes, and any packet once a hub token has expired.
func (h *mqttHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c := connOf(cl)
	if c == nil {
		return pk, errNotEmulatorConn
	}
	if pk.FixedHeader.Type == packets.Connect {
		return pk, refuseInvalidConnect(cl, pk)
	}
	if !c.sess.expiry.IsZero() && !time.Now().Before(c.sess.expiry) {
		return pk, refusePacket("the device's SAS token has expired; connect again with a new one")
	}
	if pk.FixedHeader.Type == packets.Publish {
		switch {
		case pk.FixedHeader.Qos > 1:
			return pk, refusePacket("QoS 2 publishes are not supported")
		case pk.FixedHeader.Retain:
			return pk, refusePacket("retained messages are not supported")
		case !c.mayUse(pk.TopicName, true): // here, so that a QoS 0 one closes the connection too
			return pk, refusePacket("publish on " + pk.TopicName + ": not a topic of this client")
		}
	}
	return pk, nil
}

// refuseInvalidConnect answers a malformed MQTT 3.1.1 CONNECT with a 3.1.1
// return code before mochi's own check does, which would send an MQTT 5
// reason code (0x80, 0x82) that 3.1.1 clients cannot read.
func refuseInvalidConnect(cl *mqtt.Client, pk packets.Packet) error {
	if pk.ProtocolVersion == 5 {
		return nil
	}
	code := pk.ConnectValidate()
	var v3 byte
	switch {
	case code == packets.ErrProtocolViolationProtocolVersion:
		v3 = connackBadProtocol
	case code != packets.CodeSuccess:
		v3 = connackNotAuthorized
	case !pk.Connect.Clean && pk.Connect.ClientIdentifier == "":
		v3 = connackBadClientID
	default:
		return nil
	}
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: v3})
	return fmt.Errorf("%w: invalid CONNECT (%s)", packets.ErrRejectPacket, code.Reason)
}

// refusePacket is an OnPacketRead error that ends the connection (mochi
// ignores other errors there).
func refusePacket(why string) error {
	return fmt.Errorf("%w: %s", packets.ErrRejectPacket, why)
}

// OnACLCheck confines a client to its own topics (mayUse).
func (h *mqttHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	c := connOf(cl)
	return c != nil && c.mayUse(topic, write)
}

// mayUse says whether the client may publish on topic (write) or subscribe
// to it, or receive from it (a filter or a topic): on DPS the registration
// request and response topics, on a hub its device's topics and the $iothub
// topics of its own connection. $SYS and other devices' topics are neither
// readable nor writable.
func (c *mqttConn) mayUse(topic string, write bool) bool {
	var allowed []string
	switch {
	case c.ep.hub == nil && write:
		allowed = []string{"$dps/registrations/"}
	case c.ep.hub == nil:
		allowed = []string{"$dps/registrations/res/"}
	case write:
		d := "devices/" + c.sess.deviceID + "/"
		allowed = []string{d + "messages/events/", "$iothub/twin/GET/", "$iothub/twin/PATCH/properties/reported/", "$iothub/methods/res/"}
		if topic == d+"messages/events" {
			return true
		}
	default:
		d := "devices/" + c.sess.deviceID + "/"
		allowed = []string{d + "messages/devicebound/", "$iothub/twin/res/", "$iothub/twin/PATCH/properties/desired/", "$iothub/methods/POST/"}
	}
	for _, p := range allowed {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}
