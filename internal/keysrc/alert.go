package keysrc

// TLS alert descriptions (RFC 8446, 6) a worker refuses a TLS client
// with before any handshake.
const (
	AlertHandshakeFailure uint8 = 40
	AlertDecodeError      uint8 = 50
	AlertInternalError    uint8 = 80
	AlertUnrecognizedName uint8 = 112
)

// Alert returns a fatal TLS alert record with description desc: what a
// client that sent a ClientHello, and got no handshake, reads before the
// close. The record version is TLS 1.2's, which every client accepts
// before a version is negotiated.
func Alert(desc uint8) []byte {
	return []byte{recordAlert, 3, 3, 0, 2, 2, desc}
}
