package tui

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dpsconsole/dpsconsole/dps"
)

// noToken is a sign-in describe never calls: it only writes commands.
type noToken struct{}

func (noToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	panic("describe's commands must not ask for a token")
}

func commandsTarget(t *testing.T, entra bool) *Target {
	t.Helper()
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	const host = "contoso.azure-devices-provisioning.net"
	tg := &Target{Name: "contoso", HubConnectionStrings: []string{
		"HostName=hub-1.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key,
		"HostName=hub-2.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key,
	}}
	var err error
	if entra {
		tg.Auth, tg.Credential, tg.HubConnectionStrings = AuthEntraID, noToken{}, nil
		tg.Service, err = dps.NewClient(host, noToken{}, nil)
	} else {
		tg.Service, err = dps.NewClientFromConnectionString("HostName="+host+";SharedAccessKeyName=provisioningserviceowner;SharedAccessKey="+key, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// A hub device's commands log in with the connection string of its own hub,
// named as the emulator's env file and the hub CLI name them.
func TestDescribeCommandsNameTheHubsOwnConnectionString(t *testing.T) {
	tg := commandsTarget(t, false)
	for hubHost, want := range map[string]string{
		"hub-1.azure-devices.net": `--login "$IOTHUB_CONNECTION_STRING" `,
		"hub-2.azure-devices.net": `--login "$IOTHUB_CONNECTION_STRING_2" `,
	} {
		got := strings.Join(describeCommands(tg, describeSubject{kind: describeHubDevice, id: "d1", hub: hubHost}), "\n")
		if strings.Count(got, want) != 2 {
			t.Errorf("a device on %s should log in with %s twice:\n%s", hubHost, want, got)
		}
	}
}

// On an Entra ID target curl sends a bearer token for the service's own
// resource; no SAS token is offered.
func TestDescribeCommandsOnEntraUseABearerToken(t *testing.T) {
	tg := commandsTarget(t, true)
	for _, c := range []struct {
		s        describeSubject
		resource string
	}{
		{describeSubject{kind: describeGroup, id: "g"}, "https://azure-devices-provisioning.net"},
		{describeSubject{kind: describeRecord, id: "r"}, "https://azure-devices-provisioning.net"},
		{describeSubject{kind: describeHubDevice, id: "d1", hub: "hub-2.azure-devices.net"}, "https://iothubs.azure.net"},
	} {
		// A long command goes on two lines: read it as one.
		got := strings.ReplaceAll(strings.Join(describeCommands(tg, c.s), "\n"), " \\\n  ", " ")
		for _, want := range []string{"TOKEN=$(az account get-access-token --resource " + c.resource + " --query accessToken -o tsv)", `-H "Authorization: Bearer $TOKEN"`} {
			if !strings.Contains(got, want) {
				t.Errorf("%v on Entra ID lacks %q:\n%s", c.s.kind, want, got)
			}
		}
		if strings.Contains(got, "keys sas") || strings.Contains(got, "CONNECTION_STRING") {
			t.Errorf("%v on Entra ID offers a key:\n%s", c.s.kind, got)
		}
	}
}
