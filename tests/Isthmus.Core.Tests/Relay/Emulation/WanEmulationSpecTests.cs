using Isthmus.Core.Relay.Emulation;
using Xunit;

namespace Isthmus.Core.Tests.Relay.Emulation;

public class WanEmulationSpecTests
{
    [Fact]
    public void Parses_every_key()
    {
        var spec = WanEmulationSpec.Parse("delay=5ms,jitter=1ms,rate=1Gbit,loss=0.1%,outage=15s@60s/120s");
        Assert.Equal(TimeSpan.FromMilliseconds(5), spec.Delay);
        Assert.Equal(TimeSpan.FromMilliseconds(1), spec.Jitter);
        Assert.Equal(1_000_000_000, spec.RateBitsPerSecond);
        Assert.Equal(0.001, spec.Loss, 12);
        Assert.Equal(new WanOutageSchedule(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(120)), spec.Outage);
        Assert.True(spec.ShapesBytes);
    }

    [Theory]
    [InlineData("delay=2.5ms", 2.5)]
    [InlineData("delay=250us", 0.25)]
    [InlineData("delay=1s", 1000)]
    [InlineData(" delay = 25ms ", 25)]
    [InlineData("DELAY=3ms", 3)]
    public void Delay_units(string text, double ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), WanEmulationSpec.Parse(text).Delay);

    [Theory]
    [InlineData("rate=500bit", 500)]
    [InlineData("rate=500kbit", 500_000)]
    [InlineData("rate=100Mbit", 100_000_000)]
    [InlineData("rate=100mbps", 100_000_000)]
    [InlineData("rate=2.5Gbit", 2_500_000_000)]
    [InlineData("rate=1gbit/s", 1_000_000_000)]
    public void Rate_units(string text, long bits) => Assert.Equal(bits, WanEmulationSpec.Parse(text).RateBitsPerSecond);

    [Theory]
    [InlineData("loss=0%", 0)]
    [InlineData("loss=10%", 0.1)]
    [InlineData("loss=100%", 1)]
    public void Loss_in_percent(string text, double fraction) => Assert.Equal(fraction, WanEmulationSpec.Parse(text).Loss, 12);

    [Fact]
    public void Outage_without_repeat_happens_once()
    {
        var outage = WanEmulationSpec.Parse("outage=5s@3s").Outage!;
        Assert.Null(outage.Every);
        Assert.False(outage.IsOut(TimeSpan.FromSeconds(2.9)));
        Assert.True(outage.IsOut(TimeSpan.FromSeconds(3)));
        Assert.True(outage.IsOut(TimeSpan.FromSeconds(7.9)));
        Assert.False(outage.IsOut(TimeSpan.FromSeconds(8)));
        Assert.False(outage.IsOut(TimeSpan.FromSeconds(1003)));
    }

    [Fact]
    public void Outage_with_repeat_comes_back_every_period()
    {
        var outage = WanEmulationSpec.Parse("outage=2s@10s/30s").Outage!;
        Assert.True(outage.IsOut(TimeSpan.FromSeconds(11)));
        Assert.False(outage.IsOut(TimeSpan.FromSeconds(12)));
        Assert.True(outage.IsOut(TimeSpan.FromSeconds(40.5)));
        Assert.False(outage.IsOut(TimeSpan.FromSeconds(39.9)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("none")]
    [InlineData("off")]
    public void Empty_and_none_emulate_nothing(string text) => Assert.True(WanEmulationSpec.Parse(text).IsNone);

    [Fact]
    public void Loss_alone_does_not_queue_bytes() => Assert.False(WanEmulationSpec.Parse("loss=1%,outage=1s@1s").ShapesBytes);

    [Theory]
    [InlineData("delay=5ms,jitter=1ms,rate=1000000000bit,loss=0.1%,outage=15000ms@60000ms/120000ms")]
    [InlineData("delay=2.5ms")]
    public void Text_round_trips(string text)
    {
        var spec = WanEmulationSpec.Parse(text);
        Assert.Equal(spec, WanEmulationSpec.Parse(spec.ToString()));
    }

    [Theory]
    [InlineData("delay", "'delay' is not KEY=VALUE")]
    [InlineData("=5ms", "'=5ms' is not KEY=VALUE")]
    [InlineData("latency=5ms", "unknown key 'latency'")]
    [InlineData("delay=5ms,delay=6ms", "'delay' is given twice")]
    [InlineData("delay=5", "delay=5: not a duration")]
    [InlineData("delay=fast", "delay=fast: not a duration")]
    [InlineData("delay=-1ms", "delay=-1ms: not a duration")]
    [InlineData("delay=5ms,jitter=abc", "jitter=abc: not a duration")]
    [InlineData("delay=1ms,jitter=2ms", "jitter=2ms is more than delay=1ms")]
    [InlineData("jitter=1ms", "jitter=1ms is more than delay=0ms")]
    [InlineData("rate=0Mbit", "rate=0Mbit: not a rate")]
    [InlineData("rate=100", "rate=100: not a rate")]
    [InlineData("rate=100MB", "rate=100MB: not a rate")]
    [InlineData("loss=0.1", "loss=0.1: not a percentage")]
    [InlineData("loss=101%", "loss=101%: not a percentage")]
    [InlineData("loss=-1%", "loss=-1%: not a percentage")]
    [InlineData("outage=15s", "outage=15s: not DURATION@START")]
    [InlineData("outage=0s@5s", "outage=0s@5s: not DURATION@START")]
    [InlineData("outage=5s@x", "outage=5s@x: not DURATION@START")]
    [InlineData("outage=5s@1s/5s", "outage=5s@1s/5s: not DURATION@START")]
    [InlineData("delay=5ms,,rate=1Gbit", "'' is not KEY=VALUE")]
    public void Bad_input_names_the_bad_part(string text, string expected)
    {
        Assert.False(WanEmulationSpec.TryParse(text, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
        var thrown = Assert.Throws<FormatException>(() => WanEmulationSpec.Parse(text));
        Assert.Equal(error, thrown.Message);
    }
}
