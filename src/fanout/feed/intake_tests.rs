//! The intake's unit tests: its numbering and order, and the fsync's pace.

use super::*;
#[test]
fn the_intake_numbers_each_event_once_and_hands_them_out_in_number_order() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), true).unwrap();
    let spool = Arc::new(spool);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let publish: Publish = {
        let seen = seen.clone();
        Box::new(move |entries| {
            seen.lock()
                .unwrap()
                .extend(entries.iter().map(|e| e.event.seq))
        })
    };
    // Urgent: the syncing thread answers without being asked (`Spooled::durable`).
    let intake = Intake::start(spool.clone(), publish, pace(true, 0)).unwrap();
    // From several threads at once: some append, some leave theirs to the one appending.
    let intake = Arc::new(intake);
    let submitters: Vec<_> = (0..4)
        .map(|_| {
            let intake = intake.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| {
                        let (submission, _, durable) = submission();
                        intake.submit(submission);
                        durable
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<_> = submitters
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let mut numbers: Vec<u64> = answers
        .into_iter()
        .map(|a| a.blocking_recv().unwrap().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=100).collect::<Vec<_>>());
    assert_eq!(*seen.lock().unwrap(), numbers);
    drop(intake);
    let (events, _) = spool.read_from(1, 101, usize::MAX, None).unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), numbers);
}

/// A submission with its answer and the receiver of its number once durable.
fn submission() -> (
    Submission,
    Arc<Answer>,
    oneshot::Receiver<Result<u64, String>>,
) {
    let (done, durable) = oneshot::channel();
    let answer = Arc::new(Answer::default());
    let submission = Submission {
        event: placeholder(),
        verdicts: None,
        answer: Some(answer.clone()),
        done,
    };
    (submission, answer, durable)
}

#[test]
fn a_submitter_appends_what_others_queued_while_it_was_writing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), true).unwrap().0);
    let (entered, publishing) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    // The first hand-out holds its submitter until the test lets it go.
    let publish: Publish = Box::new(move |entries| {
        if entries[0].event.seq == 1 {
            entered.send(()).unwrap();
            released.lock().unwrap().recv().unwrap();
        }
    });
    let intake = Arc::new(Intake::start(spool, publish, pace(true, 0)).unwrap());
    let (first, first_answer, first_durable) = submission();
    let writer = {
        let intake = intake.clone();
        std::thread::spawn(move || intake.submit(first))
    };
    publishing.recv().unwrap();
    let (second, second_answer, second_durable) = submission();
    intake.submit(second);
    assert_eq!(
        second_answer.seq(),
        0,
        "left to the submitter appending, not waited for"
    );
    release.send(()).unwrap();
    writer.join().unwrap();
    assert_eq!(first_answer.seq(), 1);
    assert_eq!(
        second_answer.seq(),
        2,
        "appended before that submitter returned"
    );
    assert_eq!(first_durable.blocking_recv().unwrap(), Ok(1));
    assert_eq!(second_durable.blocking_recv().unwrap(), Ok(2));
}

#[tokio::test]
async fn an_event_gets_a_pace_to_be_answered_without_the_disk_unless_a_target_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), true).unwrap().0);
    let behind = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pace = SyncPace {
        every: Duration::from_secs(3600),
        urgent: {
            let behind = behind.clone();
            Box::new(move || behind.load(Ordering::SeqCst))
        },
        in_flight: Box::new(|| 0),
        answers_in: Box::new(|| Duration::ZERO),
    };
    let intake = Intake::start(spool.clone(), Box::new(|_| {}), pace).unwrap();
    // `None`: the sender was answered before the event reached the syncing thread.
    let submit = |waits: bool| {
        let (submission, _, durable) = submission();
        let durable = waits.then_some(durable);
        intake.submit(submission);
        durable
    };
    let answered = |durable: oneshot::Receiver<Result<u64, String>>| async {
        let answer = tokio::time::timeout(Duration::from_secs(30), durable).await;
        answer.expect("answered").unwrap().unwrap()
    };
    // Every target keeping up, an event waits for the disk until its deadline (its sender is
    // answered once every target has it), and so do the next ones.
    let mut waiting: Vec<oneshot::Receiver<Result<u64, String>>> =
        (0..3).map(|_| submit(true).unwrap()).collect();
    let early = tokio::time::timeout(Duration::from_millis(200), &mut waiting[0]).await;
    assert!(early.is_err(), "synced within the pace: {early:?}");
    // Their senders answered (every target had their events): nobody needs them durable.
    waiting.clear();
    // A target behind: the next event is synced at once; one whose sender has gone is not.
    behind.store(true, Ordering::SeqCst);
    submit(false);
    assert_eq!(answered(submit(true).unwrap()).await, 5);
    assert_eq!(
        spool.syncs_started(),
        1,
        "one fsync, for the one event whose sender waited"
    );
    drop(intake);
    let (events, _) = spool.read_from(1, 6, usize::MAX, None).unwrap();
    assert_eq!(events.len(), 5, "every event is in the spool");
}

#[tokio::test]
async fn a_sender_still_waiting_at_its_deadline_asks_for_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), true).unwrap().0);
    // Targets keeping up, usually answering in 2 ms: the sender asks after 4 ms.
    let intake = Intake::start(
        spool.clone(),
        Box::new(|_| {}),
        answering_in(false, 1, Duration::from_millis(2)),
    )
    .unwrap();
    let (submission, _, durable) = submission();
    intake.submit(submission);
    let mut spooled = intake.spooled(durable);
    let answer = tokio::time::timeout(Duration::from_secs(30), spooled.durable()).await;
    assert_eq!(answer.expect("answered once it asked"), Ok(1));
    assert_eq!(spool.syncs_started(), 1);
}

#[test]
fn while_every_target_keeps_up_events_do_not_wake_the_syncing_thread_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), true).unwrap().0);
    let intake = Intake::start(spool.clone(), Box::new(|_| {}), pace(false, 0)).unwrap();
    let queued = || intake.stage.written.lock().items.len();
    // Their senders were answered (every target had the events): nobody waits for the disk.
    let submit_answered = |n: usize| {
        for _ in 0..n {
            intake.submit(submission().0);
        }
    };
    submit_answered(QUEUED_MAX - 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let idle = || intake.stage.written.lock().waiter == Waiter::Idle;
    while !idle() {
        assert!(Instant::now() < deadline, "the thread never waited");
        std::thread::yield_now();
    }
    assert_eq!(
        queued(),
        QUEUED_MAX - 1,
        "left queued: the thread sleeps on"
    );
    // One more: the thread takes them all and drops them, without an fsync.
    submit_answered(1);
    while queued() != 0 {
        assert!(Instant::now() < deadline, "{} still queued", queued());
        std::thread::yield_now();
    }
    assert_eq!(spool.syncs_started(), 0);
}

/// A pace that is urgent or not, with `in_flight` requests.
fn pace(urgent: bool, in_flight: usize) -> SyncPace {
    answering_in(urgent, in_flight, Duration::ZERO)
}

/// `pace`, with targets that usually answer in `usual`.
fn answering_in(urgent: bool, in_flight: usize, usual: Duration) -> SyncPace {
    SyncPace {
        every: SYNC_PACE,
        urgent: Box::new(move || urgent),
        in_flight: Box::new(move || in_flight),
        answers_in: Box::new(move || usual),
    }
}

#[test]
fn an_urgent_fsync_waits_for_the_requests_in_flight_only_when_there_are_many() {
    let first = Instant::now();
    // Few requests in flight: at once, and every event wakes the syncing thread.
    let few = pace(true, SYNC_SIBLINGS - 1);
    assert!(few.due(1, first) <= Instant::now());
    assert!(few.wakes(1, 1));
    // Many: until each of them waits, or the first has waited `SYNC_GATHER`.
    let many = pace(true, 16);
    assert_eq!(many.due(3, first), first + SYNC_GATHER);
    assert!(many.due(16, first) <= Instant::now());
    assert!(many.wakes(0, 1), "the first one sets the deadline");
    assert!(!many.wakes(3, 2));
    assert!(many.wakes(10, 6));
    // Not urgent: no event wakes it (its sender asks, `Spooled::durable`).
    assert!(!pace(false, 16).wakes(0, 1));
}

#[test]
fn while_every_target_keeps_up_an_event_waits_twice_their_usual_answer_for_them() {
    let ms = Duration::from_millis(1);
    let unhurried = |usual: Duration| answering_in(false, 1, usual).unhurried();
    // Fast targets: half a pace, as before.
    assert_eq!(unhurried(ms / 10), SYNC_PACE / 2);
    // An app answering in 3 ms: 6 ms, so that no fsync runs for what it answers in time.
    assert_eq!(unhurried(3 * ms), 6 * ms);
    // A slow app: at most `SYNC_UNHURRIED`.
    assert_eq!(unhurried(400 * ms), SYNC_UNHURRIED);
    // A target behind: the usual answer does not matter.
    assert!(answering_in(true, 1, 3 * ms).due(1, Instant::now()) <= Instant::now());
}

#[test]
fn a_full_disk_says_what_usually_fills_it() {
    let full = std::io::Error::from_raw_os_error(28);
    let why = refusal(&full);
    assert!(why.starts_with("No space left on device"), "{why}");
    assert!(why.contains("--max-spool bounds the spool"), "{why}");
    let other = std::io::Error::from_raw_os_error(5);
    assert_eq!(refusal(&other), other.to_string());
}
