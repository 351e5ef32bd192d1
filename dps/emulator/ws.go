package emulator

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// mqttWebSocketPath is where the SDKs open MQTT over WebSockets, on the
// endpoint's HTTPS port (wss://{host}/$iothub/websocket).
const mqttWebSocketPath = "/$iothub/websocket"

// withWebSocket serves MQTT over WebSockets for ep on its HTTPS listener;
// every other request goes to h. ep is nil when MQTT is off.
func withWebSocket(ep *mqttEndpoint, h http.Handler) http.Handler {
	if ep == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.URL.Path, mqttWebSocketPath) {
			ep.ws.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// wsUpgrader leaves the subprotocol to ServeHTTP (the docs say "mqtt", the C
// SDK sends "MQTT"). An idle connection holds a 1 KiB read buffer and no
// write buffer: writes borrow one from the pool.
var wsUpgrader = websocket.Upgrader{
	HandshakeTimeout: 10 * time.Second,
	ReadBufferSize:   1 << 10,
	WriteBufferSize:  4 << 10,
	WriteBufferPool:  &sync.Pool{},
}

// ServeHTTP upgrades to a WebSocket carrying MQTT and hands it to a
// goroutine of its own, so the HTTP server's goroutine, request and buffers
// are not kept for the life of the connection.
func (l *mqttListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proto := ""
	for _, p := range websocket.Subprotocols(r) {
		if strings.EqualFold(p, "mqtt") {
			proto = p
			break
		}
	}
	if !websocket.IsWebSocketUpgrade(r) || proto == "" {
		http.Error(w, "this path serves MQTT over WebSockets: open a WebSocket with subprotocol mqtt", http.StatusBadRequest)
		return
	}
	ws, err := wsUpgrader.Upgrade(w, r, http.Header{"Sec-Websocket-Protocol": {proto}})
	if err != nil {
		return // the upgrader has answered
	}
	go func() {
		if !l.run(&wsConn{Conn: ws.NetConn(), ws: ws}) {
			ws.Close()
		}
	}()
}

// wsConn is an MQTT byte stream over WebSocket binary messages; a packet
// may span messages and a message may hold several packets.
type wsConn struct {
	net.Conn // the hijacked connection: addresses, deadlines, Close
	ws       *websocket.Conn
	r        io.Reader // the message being read
}

var errWSText = errors.New("a WebSocket text message on an MQTT connection")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errWSText
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
