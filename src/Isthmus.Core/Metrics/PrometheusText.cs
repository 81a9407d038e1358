using System.Globalization;
using System.Text;

namespace Isthmus.Core.Metrics;

/// <summary>Builds Prometheus exposition text: HELP and TYPE once per metric, then its samples.</summary>
public sealed class PrometheusText
{
    private readonly StringBuilder _text = new();

    public PrometheusText Counter(string name, string help, long value, string labels = "") => Metric(name, help, "counter", value, labels);

    public PrometheusText Gauge(string name, string help, long value, string labels = "") => Metric(name, help, "gauge", value, labels);

    private PrometheusText Metric(string name, string help, string type, long value, string labels)
    {
        _text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n{name}");
        if (labels.Length > 0)
        {
            _text.Append('{').Append(labels).Append('}');
        }

        _text.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return this;
    }

    public override string ToString() => _text.ToString();
}
