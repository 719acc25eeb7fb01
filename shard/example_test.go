package shard_test

import (
	"fmt"

	"github.com/subordinate/subordinate/shard"
)

func ExampleOwner() {
	for _, n := range []int{1, 2, 3, 8, 64} {
		fmt.Print(shard.Owner([]byte("a"), n), " ")
	}
	fmt.Println()
	// Output: 0 1 1 1 14
}
