package hostchannel

import (
	"fmt"
	"math"

	"github.com/isulad-go/isulad/api/types"
)

// MemoryWarning returns "" or, when memoryLimit (-m, bytes; <= 0 means none) is set and the
// channels' sizes add up to more than half of it, a one-line warning for create to print to
// stderr (the client puts "WARNING: " before it, as before every warning).
func MemoryWarning(chs []types.HostChannel, memoryLimit int64) string {
	if memoryLimit <= 0 || len(chs) == 0 {
		return ""
	}
	var sum int64
	for _, ch := range chs {
		if ch.Size > 0 {
			if sum > math.MaxInt64-ch.Size {
				sum = math.MaxInt64
			} else {
				sum += ch.Size
			}
		}
	}
	if sum <= memoryLimit/2 { // sum > L/2 exactly, also for odd L
		return ""
	}
	suggest := int64(math.MaxInt64)
	if memoryLimit <= math.MaxInt64-sum {
		suggest = memoryLimit + sum
	}
	return fmt.Sprintf("host channels total %d bytes, more than half of the memory limit (-m %d bytes); "+
		"pages written into a channel by the container are charged to its memory cgroup, so filling the channels can get "+
		"the container's processes OOM-killed; consider raising -m by the channel size (to %d bytes)", sum, memoryLimit, suggest)
}
