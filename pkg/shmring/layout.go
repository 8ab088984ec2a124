package shmring

// On-disk (in-tmpfs) layout of a ring file. All integers are little endian
// (the ring is only ever shared between processes of one host).
//
//	offset  size  field                     written by
//	0       8     magic "SHMRING\x01"       creator
//	8       4     version                   creator
//	12      4     header size (4096)        creator
//	16      8     capacity (data bytes)     creator
//	24      8     ring id (random)          creator
//	32      8     creation time (unix ns)   creator
//	128     8     write position            producer   (own cache line pair)
//	256     8     producer owner word       producer   (epoch | state)
//	264     8     producer heartbeat        producer
//	272     4     producer waiting flag     producer   (1 while asleep for space)
//	276     4     data futex word           producer   (bumped to wake consumer)
//	384     8     read position             consumer   (own cache line pair)
//	512     8     consumer owner word       consumer
//	520     8     consumer heartbeat        consumer
//	528     4     consumer waiting flag     consumer   (1 while asleep for data)
//	532     4     space futex word          consumer   (bumped to wake producer)
//	4096    cap   data area
//
// Hot words are 128 bytes apart so that the adjacent-line prefetcher does not
// make the producer and consumer share a line pair.
//
// A record in the data area is an 8-byte header (uint32 length, uint32 tag)
// followed by the payload, padded to a multiple of 8. Records may wrap around
// the end of the data area; since the capacity is a power of two no smaller
// than 4096 and every record starts 8-aligned, a record header never wraps.
//
// Positions are byte counts since creation: they only ever increase and are
// reduced modulo the capacity to address the data area.
const (
	headerSize = 4096

	offMagic    = 0
	offVersion  = 8
	offHdrSize  = 12
	offCapacity = 16
	offRingID   = 24
	offCreated  = 32

	offWritePos    = 128
	offProdOwner   = 256
	offProdBeat    = 264
	offProdWaiting = 272
	offDataSeq     = 276

	offReadPos     = 384
	offConsOwner   = 512
	offConsBeat    = 520
	offConsWaiting = 528
	offSpaceSeq    = 532

	magic   = uint64(0x01474e49524d4853) // "SHMRING\x01" little endian
	version = uint32(1)

	recHeader = 8
	recTag    = uint32(0x4d475352) // "RSGM"

	// MinCapacity is the smallest data area a ring may have.
	MinCapacity = 4096
	// MaxCapacity is the largest data area a ring may have.
	MaxCapacity = 1 << 40

	// Owner word: a random epoch with the low two bits holding the state.
	stateMask   = 3
	stateVacant = 0
	stateLive   = 1
	stateClosed = 2
)

func align8(n uint64) uint64 { return (n + 7) &^ 7 }
