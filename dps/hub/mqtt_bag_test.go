package hub

import "testing"

// TestPropertyBag is the topic tail Node's device SDK builds: system
// properties as $.mid/$.cid/$.ct/$.ce, custom ones after, every value
// encodeURIComponent-escaped.
func TestPropertyBag(t *testing.T) {
	bag, err := propertyBag(&SendEventOptions{MessageID: "m 1", CorrelationID: "c/2", ContentType: "application/json", ContentEncoding: "utf-8",
		Properties: map[string]string{"source": "test run", "b&c": "x=y"}})
	if want := "$.mid=m%201&$.cid=c%2F2&$.ct=application%2Fjson&$.ce=utf-8&b%26c=x%3Dy&source=test%20run"; err != nil || bag != want {
		t.Fatalf("bag %q, %v; want %q", bag, err, want)
	}
	if bag, _ := propertyBag(&SendEventOptions{}); bag != "" {
		t.Errorf("no properties: %q", bag)
	}
	if _, err := propertyBag(&SendEventOptions{Properties: map[string]string{"a b": "x"}}); err == nil {
		t.Error("a property name with a space is refused over HTTPS, so over MQTT too")
	}
}
