// Package chat will hold the chat protocol ("chat/1"): a protocol handler
// registered on the node, carrying messages between friends over a secure
// session's stream, with history kept in the data dir. Its issue is #7;
// until then the package is empty so the product's layout is in place.
package chat
