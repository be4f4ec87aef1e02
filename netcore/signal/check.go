// Package signal carries signaling between peers over public MQTT brokers
// (with github.com/eclipse/paho.mqtt.golang).
package signal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"p2pd/netcore/config"
)

// connectTimeout bounds an MQTT connection: a TCP handshake and one
// CONNECT/CONNACK exchange, three round trips to a public broker.
const connectTimeout = 2 * time.Second

// CheckBroker connects to the broker and disconnects, and returns how long
// the connection took.
func CheckBroker(ctx context.Context, broker config.Endpoint) (time.Duration, error) {
	timeout := connectTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return 0, fmt.Errorf("MQTT broker %s: no time left to connect", broker)
	}
	var id [8]byte
	rand.Read(id[:])
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + broker.Addr()).
		SetClientID("p2pd-check-" + hex.EncodeToString(id[:])).
		SetConnectTimeout(timeout).
		// MQTT 3.1.1 only: paho would otherwise retry with 3.1 on a fresh
		// timeout, past the caller's deadline.
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetCleanSession(true)
	c := mqtt.NewClient(opts)
	start := time.Now()
	tok := c.Connect()
	if !tok.WaitTimeout(timeout + 100*time.Millisecond) {
		c.Disconnect(0) // abandon the attempt; a late success is closed too
		return 0, fmt.Errorf("MQTT broker %s: no answer within %v", broker, timeout)
	}
	if err := tok.Error(); err != nil {
		return 0, fmt.Errorf("MQTT broker %s: %w", broker, err)
	}
	took := time.Since(start)
	c.Disconnect(0)
	return took, nil
}
