// The machine has two cores; topologies and their traffic run one test class at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
