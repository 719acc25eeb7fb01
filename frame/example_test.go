package frame_test

import (
	"fmt"

	"github.com/subordinate/subordinate/frame"
)

// A server feeds each read to a Decoder until the preamble is complete;
// what follows it in the last read is payload.
func ExampleDecoder() {
	d, err := frame.NewDecoder(frame.Line, frame.DefaultMaxKey)
	if err != nil {
		panic(err)
	}
	reads := [][]byte{[]byte("roo"), []byte("m1\r\nhello")}
	for _, p := range reads {
		n, done, err := d.Feed(p)
		if err != nil {
			fmt.Printf("%s", frame.AppendError(nil, frame.Reason(err)))
			return
		}
		if done {
			fmt.Printf("key %q, payload %q\n", d.Preamble().Key, p[n:])
		}
	}
	// Output: key "room1", payload "hello"
}

func ExampleDecoder_error() {
	d, _ := frame.NewDecoder(frame.Binary, 4)
	_, _, err := d.Feed([]byte{frame.MagicKey, 0, 5})
	fmt.Printf("%q", frame.AppendError(nil, frame.Reason(err)))
	// Output: "-ERR key too long: longer than 4 bytes\n"
}

func ExampleAppendKey() {
	b, _ := frame.AppendKey(nil, frame.Binary, []byte("room1"))
	fmt.Printf("%x\n", b)
	b, _ = frame.AppendKey(nil, frame.Line, []byte("room1"))
	fmt.Printf("%q\n", b)
	// Output:
	// b10005726f6f6d31
	// "room1\n"
}

// A trusted client reaches shard 3 on purpose; the server checks the token.
func ExampleVerifyDirect() {
	secret := []byte("s3cret")
	wire, _ := frame.AppendDirect(nil, frame.Binary, 3, secret)

	d, _ := frame.NewDecoder(frame.Binary, frame.DefaultMaxKey)
	d.Feed(wire)
	p := d.Preamble()
	fmt.Println(p.Direct, p.Shard, frame.VerifyDirect(secret, 8, p.Shard, p.Token))
	fmt.Println(frame.Reason(frame.VerifyDirect(secret, 2, p.Shard, p.Token)))
	// Output:
	// true 3 <nil>
	// direct preamble refused: shard index out of range: 3, the server has 2 shards
}
