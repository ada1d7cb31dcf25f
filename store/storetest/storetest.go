// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's test calls Run:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, dir string) store.Store {
//			s, err := badger.Open(dir, badger.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, storetest.Options{Persistent: true})
//	}
//
// Each property is a sub-test of its own with a fresh store in a fresh
// directory. The suite closes every store it opens, so open need not
// register a cleanup that closes it.
//
// Besides what the store.Store documentation says, the suite holds an
// implementation to these readings of it:
//   - a Batch is atomic, so a message is released when no queue entry
//     refers to it at the end of the batch, whatever the order of the ops
//     inside it (an entry updated in place keeps its message);
//   - dequeuing an entry that does not exist, deleting an inbound id or a
//     retained topic that does not exist, and deleting a session that does
//     not exist are no-ops;
//   - Sessions lists only sessions put with OpPutSession, not client ids
//     that merely have queue entries or inbound ids;
//   - client ids and topics are opaque strings: "a" and "a/b" share nothing;
//   - times come back Equal to what was stored, the zero time as the zero
//     time; nil and empty slices are not told apart;
//   - retained messages are independent of queued ones, even when they
//     carry the same ID;
//   - MaxMessageID covers messages and retained messages, also after they
//     were released, and also across a restart;
//   - every done has been called by the time Close returns, and Commit
//     after Close reports store.ErrClosed (also for an empty batch).
package storetest

import (
	"testing"
	"time"

	"github.com/weirmq/weir/store"
)

// Options says what the implementation under test can do.
type Options struct {
	// Persistent stores keep what they committed in dir: the suite then
	// also closes the store, opens it again on the same dir and checks
	// that everything committed is still there, including the reference
	// counts of queued messages and MaxMessageID.
	Persistent bool
	// CommitTimeout bounds the wait for one done callback; zero means
	// 30 seconds.
	CommitTimeout time.Duration
}

// MessageCounter is an optional interface of a Store: MessageCount is the
// number of messages it holds for session queues (not counting retained
// messages). When the store implements it, the suite checks that a message
// is released when its last queue entry goes; otherwise it cannot see that
// and only logs so.
type MessageCounter interface {
	MessageCount() int
}

// Run runs the conformance suite against the stores open returns. open is
// given a t.TempDir() of the sub-test the implementation may keep its files
// in; it is called again on the same dir, after Close, when
// opts.Persistent is set.
func Run(t *testing.T, open func(t *testing.T, dir string) store.Store, opts Options) {
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 30 * time.Second
	}
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(newHarness(t, open, opts))
		})
	}
}

// suite lists every property the suite checks, each named after it.
var suite = []struct {
	name string
	fn   func(h *harness)
}{
	// commit.go
	{"CommitCallsDoneOnceWithNilError", testCommitDoneOnce},
	{"CommitDoneInCommitOrder", testCommitDoneOrder},
	{"CommitFromManyGoroutines", testCommitConcurrent},
	{"ReadsDuringCommits", testReadsDuringCommits},
	{"LargeBatch", testLargeBatch},
	{"CommitAfterCloseReportsErrClosed", testCommitAfterClose},
	{"CloseFlushesPendingCommits", testCloseFlushes},
	{"ReopenKeepsEverything", testReopenKeepsEverything},
	// session.go
	{"SessionPutReplaceDelete", testSessionPutReplaceDelete},
	{"SessionRecordFieldsIntact", testSessionFields},
	{"SessionsStopsOnError", testSessionsStopsOnError},
	{"SessionsListsOnlyPutSessions", testSessionsOnlyPut},
	{"DeleteAndPutSessionInOneBatch", testDeleteAndPutSession},
	{"ClientIDsAreOpaque", testClientIDsOpaque},
	// queue.go
	{"QueueSharedMessageForThreeSessions", testQueueShared},
	{"QueueInSeqOrder", testQueueOrder},
	{"QueueAfterSkipsEarlierEntries", testQueueAfter},
	{"QueueStopsWhenFnReturnsFalse", testQueueStops},
	{"QueueEntriesSizeAndStop", testQueueEntries},
	{"QueueEntryUpdateReplacesIt", testQueueUpdate},
	{"QueueOfUnknownClientIsEmpty", testQueueUnknown},
	{"MessageReleasedAfterLastDequeue", testReleaseOnDequeue},
	{"DequeueOfMissingEntryIsNoop", testDequeueMissing},
	{"MessageReleasedOnDeleteSession", testReleaseOnDeleteSession},
	{"MessageWithoutEntryNotKept", testMessageWithoutEntry},
	{"MessageReleaseDecidedAtEndOfBatch", testReleaseAtEndOfBatch},
	{"MaxMessageIDIsHighestEverPut", testMaxMessageID},
	// inbound.go
	{"InboundPutListSortedDelete", testInbound},
	{"InboundIsPerSession", testInboundPerSession},
	// retained.go
	{"RetainedPutReplaceDelete", testRetainedPutReplaceDelete},
	{"RetainedMessageFieldsIntact", testRetainedFields},
	{"RetainedIndependentOfQueues", testRetainedIndependent},
	{"RetainedStopsOnError", testRetainedStopsOnError},
}
