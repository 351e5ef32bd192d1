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
	clientVersion  = "dpsconsole%2Fv1" // url-encoded, as the SDKs send theirs
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
	if n, err := strconv.Atoi(q.Get("retry-after")); err == nil && n >= 0 {
		a.retryAfter, a.hasRetryAfter = time.Duration(n)*time.Second, true
	}
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

// mqttRegistration is one registration on its own connection.
type mqttRegistration struct {
	c        *Client
	regID    string
	progress func(Event)
	cl       paho.Client
	answers  chan answer
	lost     chan error
	rid      int
	opID     string
	polls    pollLimiter
}

func (c *Client) registerMQTT(ctx context.Context, regID string, key keys.Key, opts *RegisterOptions, every time.Duration) (dps.DeviceRegistrationState, error) {
	if err := checkRegistration(regID, key, opts); err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	body, err := json.Marshal(dps.DeviceRegistration{RegistrationID: regID, Payload: opts.Payload})
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	r := &mqttRegistration{c: c, regID: regID, progress: opts.Progress, answers: make(chan answer, 4), lost: make(chan error, 1)}
	if err := r.connect(ctx, key); err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	defer r.close()
	a, st, err := r.send(ctx, 0, func(rid string) string { return registerTopic + rid }, body)
	for err == nil && !isFinal(st.Status) {
		wait := every
		if a.hasRetryAfter {
			wait = a.retryAfter
		}
		if err = sleep(ctx, wait); err != nil {
			break
		}
		var n int
		n, err = r.polls.next(ctx, func(poll int, wait time.Duration) {
			r.emit(Event{Step: StepPollWait, Poll: poll, RetryAfter: wait})
		})
		if err != nil {
			break
		}
		// Node and Python send a single space as the poll's payload.
		a, st, err = r.send(ctx, n, func(rid string) string { return pollTopic + rid + "&operationId=" + url.QueryEscape(r.opID) }, []byte(" "))
	}
	if err != nil {
		return dps.DeviceRegistrationState{}, err
	}
	return result(regID, st)
}

func (r *mqttRegistration) emit(e Event) { emit(r.progress, r.opID, e) }

// connect opens the connection and subscribes to the response topics.
func (r *mqttRegistration) connect(ctx context.Context, key keys.Key) error {
	sr := r.c.idScope + "/registrations/" + r.regID
	user := sr + "/api-version=" + APIVersion + "&ClientVersion=" + clientVersion
	o := r.c.mqttOptions(r.regID, user, keys.SignSAS(sr, key, "registration", time.Now().Add(tokenLifetime)))
	o.OnConnectionLost = func(err error) {
		select {
		case r.lost <- err:
		default:
		}
	}
	r.emit(Event{Step: StepConnecting, Endpoint: o.Endpoint()})
	cl, err := mqttconn.Dial(ctx, o)
	if err != nil {
		var refused *mqttconn.RefusedError
		if errors.As(err, &refused) {
			err = &Error{Transport: r.c.transport, CONNACK: refused.Code, connect: refused}
		}
		r.emit(Event{Step: StepError, Endpoint: o.Endpoint(), Err: err})
		return err
	}
	r.cl = cl
	r.emit(Event{Step: StepConnected, Endpoint: o.Endpoint()})
	tok := cl.Subscribe(responseFilter, 1, func(_ paho.Client, m paho.Message) {
		a, ok := parseAnswer(m.Topic(), m.Payload())
		if !ok {
			return
		}
		select {
		case r.answers <- a:
		default: // nobody waits for that many answers: a stale one
		}
	})
	if err := r.wait(ctx, tok); err != nil {
		err = fmt.Errorf("subscribe to %s at %s: %w", responseFilter, o.Endpoint(), err)
		r.emit(Event{Step: StepError, Topic: responseFilter, Err: err})
		r.close()
		return err
	}
	qos := tok.(*paho.SubscribeToken).Result()[responseFilter]
	if qos > 2 {
		r.close()
		err := fmt.Errorf("DPS refused the subscription to %s (SUBACK 0x%x)", responseFilter, qos)
		r.emit(Event{Step: StepError, Topic: responseFilter, Err: err})
		return err
	}
	r.emit(Event{Step: StepSubscribed, Topic: responseFilter, QoS: qos})
	return nil
}

// close unsubscribes and disconnects, as the Node SDK does.
func (r *mqttRegistration) close() {
	r.cl.Unsubscribe(responseFilter)
	r.cl.Disconnect(250)
}

// wait waits for a token within the request timeout, or for a lost connection.
func (r *mqttRegistration) wait(ctx context.Context, tok paho.Token) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	select {
	case err := <-r.lost:
		return fmt.Errorf("DPS closed the MQTT connection: %w", err)
	default:
	}
	return mqttconn.Wait(ctx, tok)
}

// send publishes one request (register when poll is 0, else that poll) and
// waits for its answer. A 429 or 5xx is sent again after DPS's retry-after,
// as the SDKs do over MQTT; any other status but 200/202 is an *Error.
func (r *mqttRegistration) send(ctx context.Context, poll int, topicFor func(rid string) string, body []byte) (answer, *dps.RegistrationOperationStatus, error) {
	sent, got := StepRequestSent, StepAccepted
	if poll > 0 {
		sent, got = StepPollSent, StepPolled
	}
	fail := func(e Event) (answer, *dps.RegistrationOperationStatus, error) {
		e.Step, e.Poll = StepError, poll
		r.emit(e)
		return answer{}, nil, e.Err
	}
	for attempt := 0; ; attempt++ {
		r.rid++
		rid := strconv.Itoa(r.rid)
		topic := topicFor(rid)
		r.emit(Event{Step: sent, Poll: poll, Topic: topic})
		a, err := r.await(ctx, r.cl.Publish(topic, 1, false, body), rid)
		if err != nil {
			return fail(Event{Topic: topic, Err: err})
		}
		if (a.status == http.StatusTooManyRequests || a.status >= 500) && attempt < r.c.retries {
			wait := retryDelay
			if a.hasRetryAfter {
				wait = a.retryAfter
			}
			r.emit(Event{Step: StepRetry, Poll: poll, HTTPStatus: a.status, Topic: a.topic, RetryAfter: wait})
			if err := sleep(ctx, wait); err != nil {
				return fail(Event{Err: err})
			}
			continue
		}
		if a.status != http.StatusOK && a.status != http.StatusAccepted {
			return fail(Event{HTTPStatus: a.status, Topic: a.topic, Err: newMQTTError(r.c.transport, a.status, a.payload)})
		}
		st, err := decodeStatus("res/"+strconv.Itoa(a.status), a.payload, r.opID)
		if err != nil {
			return fail(Event{HTTPStatus: a.status, Topic: a.topic, Err: err})
		}
		if r.opID == "" {
			r.opID = st.OperationID
		}
		r.emit(Event{Step: got, Poll: poll, HTTPStatus: a.status, Status: st.Status, RetryAfter: a.retryAfter, Topic: a.topic, State: st.RegistrationState})
		if isFinal(st.Status) {
			r.emit(Event{Step: StepResult, HTTPStatus: a.status, Status: st.Status, Topic: a.topic, State: st.RegistrationState})
		}
		return a, st, nil
	}
}

// await waits for the answer to request rid, the PUBACK of whose publish is tok.
func (r *mqttRegistration) await(ctx context.Context, tok paho.Token, rid string) (answer, error) {
	timer := time.NewTimer(requestTimeout)
	defer timer.Stop()
	acked := tok.Done()
	for {
		select {
		case a := <-r.answers:
			if a.rid == rid {
				return a, nil
			}
			// An answer to an earlier request that was given up on.
		case <-acked:
			if err := tok.Error(); err != nil {
				return answer{}, fmt.Errorf("publish to DPS: %w", err)
			}
			acked = nil
		case err := <-r.lost:
			return answer{}, fmt.Errorf("DPS closed the MQTT connection before answering: %w", err)
		case <-timer.C:
			return answer{}, fmt.Errorf("DPS sent no answer within %v", requestTimeout)
		case <-ctx.Done():
			return answer{}, ctx.Err()
		}
	}
}
