// Package transfer will hold the file transfer protocol ("transfer/1"): a
// protocol handler on the node that sends files over a secure session with
// resumable, verified chunks into the chosen download folder. Its issue is
// #7; until then the package is empty so the product's layout is in place.
package transfer
