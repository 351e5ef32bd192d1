// Package mqttconn opens the MQTT 3.1.1 connections a simulated device makes
// to DPS and to its IoT hub, over TLS on 8883 or over WebSockets on 443
// (wss://host/$iothub/websocket), with the paho client. It holds what the
// device and hub clients share: the transport names, the broker address, the
// CONNECT and its refusals in plain words.
package mqttconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/gorilla/websocket"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Transport is how a device talks to DPS and its hub.
type Transport string

const (
	HTTPS      Transport = "https"   // REST over HTTPS (the default)
	MQTT       Transport = "mqtt"    // MQTT 3.1.1 over TLS, port 8883
	WebSockets Transport = "mqtt-ws" // MQTT 3.1.1 over WebSockets over TLS, port 443
)

// Transports lists the transports in the order a user picks them.
var Transports = []Transport{HTTPS, MQTT, WebSockets}

// ParseTransport reads a transport name; "" is HTTPS.
func ParseTransport(s string) (Transport, error) {
	if s == "" {
		return HTTPS, nil
	}
	for _, t := range Transports {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown transport %q: use https, mqtt or mqtt-ws", s)
}

// IsMQTT reports whether t is one of the MQTT transports.
func (t Transport) IsMQTT() bool { return t == MQTT || t == WebSockets }

// ClientVersion names this program to DPS and IoT Hub in the MQTT user
// name, url-encoded as the SDKs send theirs.
const ClientVersion = "dpsconsole%2Fv1"

// Default ports of the services; the SDKs never use others.
const (
	mqttPort      = "8883"
	websocketPort = "443"
	websocketPath = "/$iothub/websocket"
)

// connectTimeout bounds the TCP, TLS, WebSocket and MQTT handshakes.
const connectTimeout = 30 * time.Second

// Options describe one device connection.
type Options struct {
	Transport Transport
	// Host is host[:port] of the service; without a port MQTT uses 8883
	// and WebSockets 443.
	Host                         string
	ClientID, Username, Password string
	TLS                          *tls.Config // nil = system roots
	// OnConnectionLost, when set, hears of a connection that drops.
	OnConnectionLost func(error)
	// InOrder calls message handlers one at a time, in arrival order
	// (twin patches must not overtake each other); they must not block.
	InOrder bool
}

// Endpoint is the broker URL of o, as shown to the user.
func (o Options) Endpoint() string {
	if o.Transport == WebSockets {
		return "wss://" + withPort(o.Host, websocketPort) + websocketPath
	}
	return "mqtts://" + withPort(o.Host, mqttPort)
}

func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// RefusedError is a CONNACK that refused the connection.
type RefusedError struct {
	Code     byte   // CONNACK return code, 1–5
	Endpoint string // where the connection went
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s refused the MQTT connection (CONNACK %d, %s)", e.Endpoint, e.Code, connackText(e.Code))
}

// NotAuthorized reports whether the service refused the credentials.
func (e *RefusedError) NotAuthorized() bool {
	return e.Code == packets.ErrRefusedNotAuthorised || e.Code == packets.ErrRefusedBadUsernameOrPassword
}

func connackText(code byte) string {
	switch code {
	case packets.ErrRefusedBadProtocolVersion:
		return "unacceptable protocol version"
	case packets.ErrRefusedIDRejected:
		return "client ID rejected"
	case packets.ErrRefusedServerUnavailable:
		return "server unavailable"
	case packets.ErrRefusedBadUsernameOrPassword:
		return "bad user name or password"
	case packets.ErrRefusedNotAuthorised:
		return "not authorized"
	}
	return "refused"
}

// Dial connects and waits for the CONNACK. A refusal is a *RefusedError;
// an untrusted server certificate says which CA to add.
func Dial(ctx context.Context, o Options) (paho.Client, error) {
	switch o.Transport {
	case MQTT, WebSockets:
	default:
		return nil, fmt.Errorf("transport %q is not an MQTT transport", o.Transport)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		tlsConf = o.TLS.Clone()
	}
	// No ALPN: a config shared with net/http offers "h2", and a WebSocket
	// upgrade needs HTTP/1.1.
	tlsConf.NextProtos = nil
	po := paho.NewClientOptions().AddBroker(o.Endpoint()).
		SetClientID(o.ClientID).SetUsername(o.Username).SetPassword(o.Password).
		SetTLSConfig(tlsConf).SetProtocolVersion(4).SetCleanSession(true).
		SetKeepAlive(60 * time.Second).SetConnectTimeout(connectTimeout).
		SetAutoReconnect(false).SetConnectRetry(false).SetOrderMatters(o.InOrder)
	if o.OnConnectionLost != nil {
		po.SetConnectionLostHandler(func(_ paho.Client, err error) { o.OnConnectionLost(err) })
	}
	if o.Transport == WebSockets {
		// An explicit empty proxy: the device talks to the service directly.
		po.SetWebsocketOptions(&paho.WebsocketOptions{Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }})
	}
	c := paho.NewClient(po)
	tok := c.Connect().(*paho.ConnectToken)
	if err := Wait(ctx, tok); err != nil {
		go c.Disconnect(0)
		if rc := tok.ReturnCode(); rc != packets.Accepted && rc < 0x80 {
			return nil, &RefusedError{Code: rc, Endpoint: o.Endpoint()}
		}
		return nil, describeDialError(o.Endpoint(), err)
	}
	return c, nil
}

// Wait waits for a paho token, or for ctx.
func Wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func describeDialError(endpoint string, err error) error {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if errors.As(err, &cv) || errors.As(err, &ua) {
		return fmt.Errorf("the server certificate of %s is not trusted: %w (pass the CA that signed it, e.g. --ca-file)", endpoint, err)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: %w (nothing listens there: DPS and IoT Hub serve MQTT on 8883 and WebSockets on 443; check the host and port, or use --transport https)", endpoint, err)
	case errors.Is(err, websocket.ErrBadHandshake):
		return fmt.Errorf("cannot connect to %s: %w (the server did not upgrade to MQTT over WebSockets there; check the host and port)", endpoint, err)
	}
	return fmt.Errorf("cannot connect to %s: %w", endpoint, err)
}

// TLSConfigOf returns the TLS settings of an *http.Client over an
// *http.Transport, so an MQTT connection trusts what the HTTPS pipeline
// trusts; nil for any other transporter.
func TLSConfigOf(tr policy.Transporter) *tls.Config {
	c, ok := tr.(*http.Client)
	if !ok {
		return nil
	}
	if t, ok := c.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		return t.TLSClientConfig.Clone()
	}
	return nil
}
