// Package gentest compiles and runs the code evento-gen generated for its
// testdata packages: applying events, typed handlers, and a property test
// and benchmark of the generated msgpack codecs against msgpack's
// reflective codec. It holds no library code.
package gentest
