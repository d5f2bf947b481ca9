import Testing

@testable import VigilForward

@Suite struct TargetSelectorTests {
    typealias Candidate = TargetSelector.Candidate

    /// How often each target is picked over `rounds` picks.
    private func picks(_ candidates: [Candidate], rounds: Int) -> [Int: Int] {
        var selector = TargetSelector()
        selector.update(candidates)
        var counts: [Int: Int] = [:]
        for _ in 0..<rounds {
            if let index = selector.next(excluding: []) { counts[index, default: 0] += 1 }
        }
        return counts
    }

    @Test func weightsAreExactOverWholeCycles() {
        // 60 : 20 : 0 → each cycle of 4 picks has three of the first, one of the second, none of the third.
        let counts = self.picks(
            [
                Candidate(weight: 60, standby: false, available: true),
                Candidate(weight: 20, standby: false, available: true),
                Candidate(weight: 0, standby: false, available: true),
            ],
            rounds: 400
        )
        #expect(counts == [0: 300, 1: 100])
    }

    @Test func standbyCoversOnlyTheLostWeight() {
        var candidates = [
            Candidate(weight: 60, standby: false, available: true),
            Candidate(weight: 60, standby: false, available: true),
            Candidate(weight: 60, standby: true, available: true),
            Candidate(weight: 60, standby: true, available: true),
        ]
        #expect(Set(self.picks(candidates, rounds: 100).keys) == [0, 1])
        candidates[0].available = false
        // One regular target lost 60: one standby of weight 60 covers it.
        #expect(self.picks(candidates, rounds: 100) == [1: 50, 2: 50])
        candidates[1].available = false
        #expect(self.picks(candidates, rounds: 100) == [2: 50, 3: 50])
    }

    @Test func skipsTriedAndUnavailableTargets() {
        var selector = TargetSelector()
        selector.update([
            Candidate(weight: 1, standby: false, available: true),
            Candidate(weight: 1, standby: false, available: false),
            Candidate(weight: 1, standby: false, available: true),
        ])
        let first = selector.next(excluding: [])
        let second = first.flatMap { selector.next(excluding: [$0]) }
        #expect(Set([first, second].compactMap { $0 }) == [0, 2])
        #expect(selector.next(excluding: [0, 2]) == nil)
    }

    @Test func lastResortRotatesOverEveryWeightedTarget() {
        var selector = TargetSelector()
        selector.update([
            Candidate(weight: 1, standby: false, available: false),
            Candidate(weight: 0, standby: false, available: false),
            Candidate(weight: 1, standby: true, available: false),
        ])
        #expect(selector.next(excluding: []) == nil)
        #expect((0..<4).map { _ in selector.lastResort() } == [0, 2, 0, 2])
    }
}
