package dps

import (
	"net/http"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/keys"
)

// SAS token lifetime and the margin before expiry at which it is renewed: a
// token is never sent with less than sasRenewBefore left, so clock skew and a
// slow retry cannot make it expire in flight.
const (
	sasLifetime    = time.Hour
	sasRenewBefore = 5 * time.Minute
)

// errPlainHTTP is returned instead of sending a token in clear.
var errPlainHTTP error = plainHTTPError{}

type plainHTTPError struct{}

func (plainHTTPError) Error() string {
	return "dps: refusing to send the SAS token over plain HTTP; use https, or set ClientOptions.InsecureAllowHTTP for a test server"
}

// NonRetriable tells azcore's retry policy that trying again cannot help.
func (plainHTTPError) NonRetriable() {}

// sasPolicy signs every try with a service SAS token (sr = host, skn =
// policy name). The token is cached and shared by concurrent requests.
type sasPolicy struct {
	resource  string
	keyName   string
	key       keys.Key
	allowHTTP bool
	now       func() time.Time

	mu     sync.Mutex
	token  string
	expiry time.Time
}

func newSASPolicy(host, keyName string, key keys.Key, opts *ClientOptions) *sasPolicy {
	return &sasPolicy{
		resource:  host,
		keyName:   keyName,
		key:       key,
		allowHTTP: opts != nil && opts.InsecureAllowHTTP,
		now:       time.Now,
	}
}

// Do implements policy.Policy.
func (p *sasPolicy) Do(req *policy.Request) (*http.Response, error) {
	if req.Raw().URL.Scheme != "https" && !p.allowHTTP {
		return nil, errPlainHTTP
	}
	req.Raw().Header.Set("Authorization", p.currentToken())
	return req.Next()
}

// currentToken returns the cached token, signing a new one when the cached
// one is within sasRenewBefore of expiry.
func (p *sasPolicy) currentToken() string {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token == "" || now.Add(sasRenewBefore).After(p.expiry) {
		p.expiry = now.Add(sasLifetime).Truncate(time.Second)
		p.token = keys.SignSAS(p.resource, p.key, p.keyName, p.expiry)
	}
	return p.token
}
