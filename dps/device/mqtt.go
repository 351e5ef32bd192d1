package device

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dpsconsole/dpsconsole/dps"
	"github.com/dpsconsole/dpsconsole/internal/mqttconn"
	"github.com/dpsconsole/dpsconsole/internal/retryafter"
	"github.com/dpsconsole/dpsconsole/keys"
)

// Registration over MQTT (dps-protocol.md §4): CONNECT as the registration
// ID with the same SAS as HTTPS, SUBSCRIBE to the response topics, PUBLISH
// the register request, then poll the operation. Every answer comes on
// $dps/registrations/res/{status}/?$rid={rid}[&retry-after={seconds}].
const (
	responseFilter = "$dps/registrations/res/#"
	responsePrefix = "$dps/registrations/res/"
	registerTopic  = "$dps/registrations/PUT/iotdps-register/?$rid="
	pollTopic      = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid="
)

const (
	requestTimeout = 30 * time.Second // per request, as the Node SDK
	retryDelay     = 2 * time.Second  // before resending a 429/5xx that named no retry-after
)

// answer is one publish on a response topic.
type answer struct {
	status        int
	rid           string
	retryAfter    time.Duration
	hasRetryAfter bool
	topic         string
	payload       []byte
}

// parseAnswer reads $dps/registrations/res/{status}/?$rid=R[&retry-after=N].
func parseAnswer(topic string, payload []byte) (answer, bool) {
	rest, ok := strings.CutPrefix(topic, responsePrefix)
	if !ok {
		return answer{}, false
	}
	code, query, _ := strings.Cut(rest, "/?")
	status, err := strconv.Atoi(code)
	if err != nil {
		return answer{}, false
	}
	q, _ := url.ParseQuery(query)
	a := answer{status: status, rid: q.Get("$rid"), topic: topic, payload: payload}
	a.retryAfter, a.hasRetryAfter = retryafter.Parse(q.Get("retry-after"), time.Now())
	return a, true
}

// mqttOptions is the connection of one device; WebSockets go to the
// provisioning host (the HTTPS port), MQTT to the MQTT host.
func (c *Client) mqttOptions(regID, user, password string) mqttconn.Options {
	host := c.mqttHost
	if c.transport == TransportMQTTWS {
		host = c.host
	}
	return mqttconn.Options{Transport: c.transport, Host: host, ClientID: regID, Username: user, Password: password, TLS: c.tls}
}

// Session is one device's MQTT connection to DPS: a DPS MQTT connection
// belongs to one registration ID, and the device may register over it more
// than once (to re-provision). Register opens one per registration.
type Session struct {
	c        *Client
	regID    string
	progress func(Event) // of the registration running; the connection's at first
	cl       paho.Client
	answers  chan answer
	lost     chan error
	rid      int // request ids count up over the connection
	opID     string
	polls    pollLimiter
}

func (c *Client) registerMQTT(ctx context.Context, regID string, key keys.Key, opts *RegisterOptions) (dps.DeviceRegistrationState, error) {
	if err := checkRegistration(regID, key, opts); err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	s, err := c.OpenSession(ctx, regID, key, opts.Progress)
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	defer s.Close()
	return s.Register(ctx, opts)
}

// OpenSession connects as registrationID over the client's MQTT transport
// (CONNECT, then SUBSCRIBE to the response topics), reporting those steps to
// progress (may be nil). Close it when done.
func (c *Client) OpenSession(ctx context.Context, registrationID string, key keys.Key, progress func(Event)) (*Session, error) {
	if !c.transport.IsMQTT() {
		return nil, fmt.Errorf("a session is an MQTT connection; this client registers over %s: use Register", c.transport)
	}
	if err := checkDevice(registrationID, key); err != nil {
		return nil, err
	}
	s := &Session{c: c, regID: registrationID, progress: progress, answers: make(chan answer, 4), lost: make(chan error, 1)}
	if err := s.connect(ctx, key); err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the session's device and waits for the end, as
// Client.Register does.
func (s *Session) Register(ctx context.Context, opts *RegisterOptions) (dps.DeviceRegistrationState, error) {
	if opts == nil {
		opts = &RegisterOptions{}
	}
	if err := checkPayload(opts); err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	body, err := json.Marshal(dps.DeviceRegistration{RegistrationID: s.regID, Payload: opts.Payload})
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	every := opts.pollInterval()
	// Each registration is its own operation, polled under its own limit,
	// as over HTTPS.
	s.progress, s.opID, s.polls = opts.Progress, "", pollLimiter{}
	a, st, err := s.send(ctx, 0, func(rid string) string { return registerTopic + rid }, body)
	for err == nil && !isFinal(st.Status) {
		wait := every
		if a.hasRetryAfter {
			wait = a.retryAfter
		}
		if err = sleep(ctx, wait); err != nil {
			break
		}
		var n int
		n, err = s.polls.next(ctx, func(poll int, wait time.Duration) {
			s.emit(Event{Step: StepPollWait, Poll: poll, RetryAfter: wait})
		})
		if err != nil {
			break
		}
		// Node and Python send a single space as the poll's payload.
		a, st, err = s.send(ctx, n, func(rid string) string { return pollTopic + rid + "&operationId=" + url.QueryEscape(s.opID) }, []byte(" "))
	}
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	return result(s.regID, st)
}

func (s *Session) emit(e Event) { emit(s.progress, s.opID, e) }

// connect opens the connection and subscribes to the response topics.
func (s *Session) connect(ctx context.Context, key keys.Key) error {
	sr := s.c.idScope + "/registrations/" + s.regID
	user := sr + "/api-version=" + APIVersion + "&ClientVersion=" + mqttconn.ClientVersion
	o := s.c.mqttOptions(s.regID, user, keys.SignSAS(sr, key, "registration", time.Now().Add(tokenLifetime)))
	o.OnConnectionLost = func(err error) {
		select {
		case s.lost <- err:
		default:
		}
	}
	s.emit(Event{Step: StepConnecting, Endpoint: o.Endpoint()})
	cl, err := mqttconn.Dial(ctx, o)
	if err != nil {
		var refused *mqttconn.RefusedError
		if errors.As(err, &refused) {
			err = &Error{Transport: s.c.transport, CONNACK: refused.Code, connect: refused}
		}
		s.emit(Event{Step: StepError, Endpoint: o.Endpoint(), Err: err})
		return err
	}
	s.cl = cl
	s.emit(Event{Step: StepConnected, Endpoint: o.Endpoint()})
	tok := cl.Subscribe(responseFilter, 1, func(_ paho.Client, m paho.Message) {
		a, ok := parseAnswer(m.Topic(), m.Payload())
		if !ok {
			return
		}
		select {
		case s.answers <- a:
		default: // nobody waits for that many answers: a stale one
		}
	})
	if err := s.wait(ctx, tok); err != nil {
		err = fmt.Errorf("subscribe to %s at %s: %w", responseFilter, o.Endpoint(), err)
		s.emit(Event{Step: StepError, Topic: responseFilter, Err: err})
		s.Close()
		return err
	}
	qos := tok.(*paho.SubscribeToken).Result()[responseFilter]
	if qos > 2 {
		s.Close()
		err := fmt.Errorf("DPS refused the subscription to %s (SUBACK 0x%x)", responseFilter, qos)
		s.emit(Event{Step: StepError, Topic: responseFilter, Err: err})
		return err
	}
	s.emit(Event{Step: StepSubscribed, Topic: responseFilter, QoS: qos})
	return nil
}

// Close unsubscribes and disconnects, as the Node SDK does.
func (s *Session) Close() {
	s.cl.Unsubscribe(responseFilter)
	s.cl.Disconnect(250)
}

// wait waits for a token within the request timeout, or for a lost connection.
func (s *Session) wait(ctx context.Context, tok paho.Token) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	select {
	case err := <-s.lost:
		return fmt.Errorf("DPS closed the MQTT connection: %w", err)
	default:
	}
	return mqttconn.Wait(ctx, tok)
}

// send publishes one request (register when poll is 0, else that poll) and
// waits for its answer. A 429 or 5xx is sent again after DPS's retry-after,
// as the SDKs do over MQTT; any other status but 200/202 is an *Error.
func (s *Session) send(ctx context.Context, poll int, topicFor func(rid string) string, body []byte) (answer, *dps.RegistrationOperationStatus, error) {
	sent, got := StepRequestSent, StepAccepted
	if poll > 0 {
		sent, got = StepPollSent, StepPolled
	}
	fail := func(e Event) (answer, *dps.RegistrationOperationStatus, error) {
		e.Step, e.Poll = StepError, poll
		s.emit(e)
		return answer{}, nil, e.Err
	}
	for attempt := 0; ; attempt++ {
		s.rid++
		rid := strconv.Itoa(s.rid)
		topic := topicFor(rid)
		s.emit(Event{Step: sent, Poll: poll, Topic: topic})
		a, err := s.await(ctx, s.cl.Publish(topic, 1, false, body), rid)
		if err != nil {
			return fail(Event{Topic: topic, Err: err})
		}
		if (a.status == http.StatusTooManyRequests || a.status >= 500) && attempt < s.c.retries {
			wait := retryDelay
			if a.hasRetryAfter {
				wait = a.retryAfter
			}
			s.emit(Event{Step: StepRetry, Poll: poll, HTTPStatus: a.status, Topic: a.topic, RetryAfter: wait})
			if err := sleep(ctx, wait); err != nil {
				return fail(Event{Err: err})
			}
			continue
		}
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			return fail(Event{HTTPStatus: a.status, Topic: a.topic, Err: newMQTTError(s.c.transport, a.status, a.payload)})
		}
		st, err := decodeStatus("res/"+strconv.Itoa(a.status), a.payload, s.opID)
		if err != nil {
			return fail(Event{HTTPStatus: a.status, Topic: a.topic, Err: err})
		}
		if s.opID == "" {
			s.opID = st.OperationID
		}
		s.emit(Event{Step: got, Poll: poll, HTTPStatus: a.status, Status: st.Status, RetryAfter: a.retryAfter, Topic: a.topic, State: st.RegistrationState})
		if isFinal(st.Status) {
			s.emit(Event{Step: StepResult, HTTPStatus: a.status, Status: st.Status, Topic: a.topic, State: st.RegistrationState})
		}
		return a, st, nil
	}
}

// await waits for the answer to request rid, the PUBACK of whose publish is tok.
func (s *Session) await(ctx context.Context, tok paho.Token, rid string) (answer, error) {
	timer := time.NewTimer(requestTimeout)
	defer timer.Stop()
	acked := tok.Done()
	for {
		select {
		case a := <-s.answers:
			if a.rid == rid {
				return a, nil
			}
			// An answer to an earlier request that was given up on.
		case <-acked:
			if err := tok.Error(); err != nil {
				return answer{}, fmt.Errorf("publish to DPS: %w", err)
			}
			acked = nil
		case err := <-s.lost:
			return answer{}, fmt.Errorf("DPS closed the MQTT connection before answering: %w", err)
		case <-timer.C:
			return answer{}, fmt.Errorf("DPS sent no answer within %v", requestTimeout)
		case <-ctx.Done():
			return answer{}, ctx.Err()
		}
	}
}
