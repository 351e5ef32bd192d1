package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Telemetry over MQTT (dps-protocol.md §8a): CONNECT as the device ID with
// user name {hub}/{deviceId}/?api-version=... and the device SAS as
// password, then PUBLISH QoS 1 to devices/{deviceId}/messages/events/{bag}
// for every message; the PUBACK is the hub's acceptance.

// publishTimeout bounds the wait for a PUBACK.
const publishTimeout = 30 * time.Second

// mqttSender is a device's MQTT connection to its hub, opened on the first
// message and opened again after the hub closed it.
type mqttSender struct {
	deviceID, hub string
	key           keys.Key
	opts          mqttconn.Options

	mu   sync.Mutex
	conn paho.Client
	lost chan error // hears that conn dropped

	// Set by the device link (devicetwin.go): what each new connection
	// subscribes, and who hears of a drop.
	onConnect func(paho.Client) error
	onLost    func(error)
}

func newMQTTSender(hubHost, deviceID string, key keys.Key, tr mqttconn.Transport, opts *ClientOptions) (*mqttSender, error) {
	host := opts.MQTTHost
	switch {
	case tr == mqttconn.WebSockets:
		host = hubHost // WebSockets ride the hub's HTTPS port
	case host != "":
		if err := checkHost(host); err != nil {
			return nil, fmt.Errorf("MQTT %w", err)
		}
	default:
		host = hubHost // the hub's name on 8883
		if h, _, err := net.SplitHostPort(hubHost); err == nil {
			host = h
		}
	}
	tlsConf := opts.TLSConfig
	if tlsConf == nil {
		tlsConf = mqttconn.TLSConfigOf(opts.ClientOptions.Transport)
	}
	return &mqttSender{deviceID: deviceID, hub: hubHost, key: key, opts: mqttconn.Options{
		Transport: tr, Host: host, ClientID: deviceID, TLS: tlsConf, InOrder: true,
		Username: hubHost + "/" + deviceID + "/?api-version=" + APIVersion + "&DeviceClientType=" + mqttconn.ClientVersion,
	}}, nil
}

// connection returns the open connection, opening one when there is none.
func (s *mqttSender) connection(ctx context.Context) (paho.Client, chan error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.IsConnectionOpen() {
		return s.conn, s.lost, nil
	}
	o := s.opts
	o.Password = keys.SignSAS(s.hub+"/devices/"+s.deviceID, s.key, "", time.Now().Add(tokenLifetime))
	lost := make(chan error, 1)
	o.OnConnectionLost = func(err error) {
		select {
		case lost <- err:
		default:
		}
		if s.onLost != nil {
			s.onLost(err)
		}
	}
	conn, err := mqttconn.Dial(ctx, o)
	var refused *mqttconn.RefusedError
	if errors.As(err, &refused) && refused.NotAuthorized() {
		return nil, nil, fmt.Errorf("%w: wrong key for device %s: use the key it registered with DPS (derived from the group key for this registration ID)", err, s.deviceID)
	}
	if err != nil {
		return nil, nil, err
	}
	if s.onConnect != nil {
		if err := s.onConnect(conn); err != nil {
			go conn.Disconnect(0)
			return nil, nil, err
		}
	}
	s.conn, s.lost = conn, lost
	return conn, lost, nil
}

func (s *mqttSender) send(ctx context.Context, body []byte, opts *SendEventOptions) error {
	bag, err := propertyBag(opts)
	if err != nil {
		return err
	}
	conn, lost, err := s.connection(ctx)
	if err != nil {
		return fmt.Errorf("send telemetry as %s to %s: %w", s.deviceID, s.hub, err)
	}
	topic := "devices/" + s.deviceID + "/messages/events/" + bag
	tok := conn.Publish(topic, 1, false, body)
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	select {
	case <-tok.Done():
		err = tok.Error()
	case err = <-lost:
	case <-ctx.Done():
		err = fmt.Errorf("no PUBACK: %w", ctx.Err())
	}
	if err != nil {
		s.drop(conn) // the next message opens a new connection
		// IoT Hub closes the connection on a message it does not accept.
		return fmt.Errorf("send telemetry as %s to %s over MQTT: the hub did not accept the message (%v): check the device key and that the device is registered on this hub", s.deviceID, s.hub, err)
	}
	return nil
}

// drop forgets conn, if it is still the current connection, and closes it.
func (s *mqttSender) drop(conn paho.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == conn {
		s.conn = nil
	}
	go conn.Disconnect(0)
	if s.onLost != nil { // paho reports no loss for a Disconnect
		go s.onLost(errors.New("closed after a refused message"))
	}
}

func (s *mqttSender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Disconnect(250)
		s.conn = nil
	}
}

// propertyBag is the url-encoded k=v&k2=v2 of a message's system
// properties ($.mid, $.cid, $.ct, $.ce) and custom properties, sorted.
func propertyBag(opts *SendEventOptions) (string, error) {
	if err := checkProperties(opts.Properties); err != nil {
		return "", err
	}
	var pairs []string
	add := func(k, v string) {
		if v != "" {
			pairs = append(pairs, k+"="+escape(v))
		}
	}
	// System property names go as they are: '$' and '.' included.
	add("$.mid", opts.MessageID)
	add("$.cid", opts.CorrelationID)
	add("$.ct", opts.ContentType)
	add("$.ce", opts.ContentEncoding)
	names := make([]string, 0, len(opts.Properties))
	for k := range opts.Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		add(escape(k), opts.Properties[k])
	}
	return strings.Join(pairs, "&"), nil
}

// escape is close to JavaScript's encodeURIComponent, as the Node SDK
// encodes the bag (a space is %20, not '+').
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// checkProperties refuses property names no transport can carry.
func checkProperties(props map[string]string) error {
	for k := range props {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			return fmt.Errorf("message property name %q is not usable as a header name", k)
		}
	}
	return nil
}
