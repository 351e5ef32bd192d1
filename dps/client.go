package dps

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/tracing"

	"github.com/dpsconsole/dpsconsole/keys"
)

const (
	moduleName    = "github.com/dpsconsole/dpsconsole/dps"
	moduleVersion = "v0.1.0"
)

// ClientOptions configures a Client. The zero value is fine.
type ClientOptions struct {
	azcore.ClientOptions

	// InsecureAllowHTTP lets the client send its SAS token over plain HTTP.
	// Only for test servers: a token on the wire in clear is a credential
	// leak, so without it every plain-HTTP request fails before it is sent.
	InsecureAllowHTTP bool

	// Scheme of the endpoint: "https" (the default) or "http" (test servers;
	// needs InsecureAllowHTTP).
	Scheme string

	// ResourceID is the DPS's Azure resource ID (/subscriptions/…/provisioningServices/NAME,
	// from ARM discovery). A client signed in with Microsoft Entra ID names it
	// in refusals as the scope where the missing role must be assigned; "" says
	// "the DPS resource" instead.
	ResourceID string
}

// Scope is the OAuth 2.0 scope of the DPS service API: the tokens a Client
// made by NewClient sends are for it.
const Scope = "https://azure-devices-provisioning.net/.default"

// Client talks to the DPS service (management) API of one DPS instance.
// It is safe for concurrent use.
type Client struct {
	internal *azcore.Client
	sas      *sasPolicy // nil when signed in with Microsoft Entra ID
	retry    policy.RetryOptions
	host     string
	endpoint string
	// resourceID is where a missing role must be assigned (ClientOptions.ResourceID).
	resourceID string
	// auth and opts made the client, for Streaming.
	auth policy.Policy
	opts ClientOptions
}

// NewClientFromConnectionString makes a client from a service connection
// string (HostName=...;SharedAccessKeyName=...;SharedAccessKey=...). Errors
// say what is wrong with the string and never repeat its key.
func NewClientFromConnectionString(connStr string, opts *ClientOptions) (*Client, error) {
	cs, err := keys.ParseServiceConnectionString(connStr)
	if err != nil {
		return nil, err
	}
	sas := newSASPolicy(cs.HostName, cs.SharedAccessKeyName, cs.SharedAccessKey, opts)
	c, err := newClient(cs.HostName, sas, opts)
	if err != nil {
		return nil, err
	}
	c.sas = sas
	return c, nil
}

// NewClient makes a client of the DPS at host (name[:port], e.g.
// mydps.azure-devices-provisioning.net) that signs every request with a
// Microsoft Entra ID bearer token for Scope from cred, through the same
// pipeline as the SAS client. The identity needs a DPS data role: "Device
// Provisioning Service Data Reader" to read, "… Data Contributor" to write;
// refusals come back as *AccessError naming it.
func NewClient(host string, cred azcore.TokenCredential, opts *ClientOptions) (*Client, error) {
	if host == "" || strings.ContainsAny(host, "/?#") {
		return nil, fmt.Errorf("dps: the DPS host %q must be a host name or host:port, e.g. mydps.azure-devices-provisioning.net", host)
	}
	if cred == nil {
		return nil, errors.New("dps: NewClient needs a credential")
	}
	allowHTTP := opts != nil && opts.InsecureAllowHTTP
	return newClient(host, runtime.NewBearerTokenPolicy(cred, []string{Scope}, &policy.BearerTokenOptions{InsecureAllowCredentialWithHTTP: allowHTTP}), opts)
}

// Default retry settings: DPS throttles at 1,000 operations a minute and
// answers 429 with Retry-After in seconds, so allow a few retries that may
// wait that long.
const (
	defaultMaxRetries    = 5
	defaultRetryDelay    = 500 * time.Millisecond
	defaultMaxRetryDelay = 60 * time.Second
)

func newClient(host string, auth policy.Policy, opts *ClientOptions) (*Client, error) {
	if opts == nil {
		opts = &ClientOptions{}
	}
	given := *opts
	scheme := "https"
	switch opts.Scheme {
	case "", "https":
	case "http":
		scheme = "http" // the SAS policy refuses it unless InsecureAllowHTTP
	default:
		return nil, errors.New(`dps: ClientOptions.Scheme must be "https" or "http"`)
	}
	co := opts.ClientOptions
	if co.Transport == nil {
		tr, err := NewTransport(nil)
		if err != nil {
			return nil, err
		}
		co.Transport = tr
	}
	given.Transport = co.Transport
	co.Transport = untrustedIsFinal{wholeBody{co.Transport}}
	if co.Retry.MaxRetries == 0 {
		co.Retry.MaxRetries = defaultMaxRetries
	}
	if co.Retry.RetryDelay == 0 {
		co.Retry.RetryDelay = defaultRetryDelay
	}
	if co.Retry.MaxRetryDelay == 0 {
		co.Retry.MaxRetryDelay = defaultMaxRetryDelay
	}
	c, err := azcore.NewClient(moduleName, moduleVersion, runtime.PipelineOptions{
		PerRetry: []policy.Policy{auth},
		// Safe to log: tracking and paging headers carry no secrets.
		AllowedHeaders: []string{headerContinuation, headerMaxItemCount, "x-ms-error-code", "x-ms-item-type"},
		Tracing:        runtime.TracingOptions{Namespace: "Microsoft.Devices"},
	}, &co)
	if err != nil {
		return nil, err
	}
	return &Client{internal: c, retry: co.Retry, host: host, endpoint: scheme + "://" + host, resourceID: opts.ResourceID, auth: auth, opts: given}, nil
}

// SignedIn reports whether the client sends Microsoft Entra ID tokens (NewClient)
// rather than SAS tokens.
func (c *Client) SignedIn() bool { return c.sas == nil }

// Host is the DPS host name the client talks to (from the connection string).
func (c *Client) Host() string { return c.host }

// Endpoint is the base URL of the service API.
func (c *Client) Endpoint() string { return c.endpoint }

func (c *Client) pipeline() runtime.Pipeline { return c.internal.Pipeline() }
func (c *Client) tracer() tracing.Tracer     { return c.internal.Tracer() }

// NewTransport returns an HTTP client that trusts the system roots plus the
// CA certificates in caPEM (for example an emulator's DPS_CA_FILE), for
// ClientOptions.Transport. caPEM may be empty.
func NewTransport(caPEM []byte) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the CA file holds no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	// Paged listings and cleanup workers reuse connections to one host.
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr}, nil
}

// untrustedIsFinal stops azcore retrying a request whose server certificate
// is not trusted: no retry can fix that, and waiting out the backoff only
// delays the message saying which CA to add.
type untrustedIsFinal struct{ next policy.Transporter }

func (t untrustedIsFinal) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.next.Do(req)
	var cv *tls.CertificateVerificationError
	if err != nil && errors.As(err, &cv) {
		return nil, untrustedError{err}
	}
	return resp, err
}

type untrustedError struct{ error }

func (e untrustedError) Unwrap() error { return e.error }
func (untrustedError) NonRetriable()   {}
