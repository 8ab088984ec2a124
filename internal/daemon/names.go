package daemon

import (
	"math/rand/v2"
)

var (
	nameLeft  = []string{"brave", "calm", "clever", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "sharp", "swift", "tender", "vivid", "wise", "zealous"}
	nameRight = []string{"babbage", "curie", "darwin", "euler", "fermat", "galois", "hopper", "kepler", "lovelace", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "turing", "volta", "wiles", "wozniak", "yonath"}
)

// randomName picks a free docker-style name.
func (d *Daemon) randomName() string {
	for i := 0; ; i++ {
		n := nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if i > 10 {
			n += "_" + string(rune('a'+rand.IntN(26))) + string(rune('a'+rand.IntN(26)))
		}
		if _, err := d.store.Get(n); err != nil {
			return n
		}
	}
}
