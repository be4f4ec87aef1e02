package node

import (
	"p2pd/netcore/addr"
	"p2pd/netcore/stun"
)

// Path is the best kind of connection two nodes can make, as far as their
// NATs decide: what Connect's race ends with when signaling and a relay
// are at hand.
type Path uint8

// Paths, from best to worst.
const (
	// PathDirect: one side can be reached unasked (no NAT and no filter, a
	// full-cone NAT, or a port mapped on the router), so the other dials
	// it (Direct, or Reverse when the caller is the reachable one).
	PathDirect Path = iota + 1
	// PathPunch: both routers are predictable enough for TCP or UDP hole
	// punching.
	PathPunch
	// PathBirthday: only birthday probing can meet (one router maps at
	// random); the relay covers its misses.
	PathBirthday
	// PathRelay: nothing direct can work; a TURN relay carries the session.
	PathRelay
)

var pathNames = [...]string{"unknown", "direct", "punch", "birthday", "relay"}

// String names the path: "direct", "punch", "birthday" or "relay".
func (p Path) String() string {
	if int(p) < len(pathNames) {
		return pathNames[p]
	}
	return "unknown"
}

// Reach says how a node with NAT profile me and a friend with profile
// friend connect: the same planning Connect does (which strategies can
// start), reduced to the best that can win. It is symmetric.
func Reach(me, friend addr.NATProfile) Path {
	if reachableProfile(me) || reachableProfile(friend) {
		return PathDirect
	}
	a, b := traitsOf(me), traitsOf(friend)
	if reaches(a, b) || reaches(b, a) {
		return PathPunch
	}
	if birthdayMeets(a, b) {
		return PathBirthday
	}
	return PathRelay
}

// reachableProfile is reachableBy's test on a profile: anyone's packets
// reach a port whose number is known in advance.
func reachableProfile(p addr.NATProfile) bool {
	return p.Filtering == stun.EndpointIndependent && (!p.Translated || p.Mapping == stun.EndpointIndependent)
}

// NATProfileOf is the profile a node publishes in its address for a
// discovered NAT. A port the router maps on request (UPnP, NAT-PMP) lets
// anyone reach the node, as an open address does, so mapped gives that
// profile.
func NATProfileOf(p *stun.Profile, mapped bool) addr.NATProfile {
	if mapped {
		return addr.NATProfile{Mapping: stun.EndpointIndependent, Filtering: stun.EndpointIndependent, Ports: stun.DeltaEqual}
	}
	return natProfile(p)
}
