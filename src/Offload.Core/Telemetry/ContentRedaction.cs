using System.Diagnostics;
using System.Globalization;
using OpenTelemetry;
using Offload.Redaction;

namespace Offload.Telemetry;

/// <summary>
/// Takes known secrets out of exported content, as the store does for the journal: a model's answer and the messages of
/// a <c>chat</c> span are traced before (or without) being stored. Runs before the exporter, only when content is exported;
/// a task's own secrets apply to the spans of its trace (found by the <c>gen_ai.conversation.id</c> of the span or a parent).
/// </summary>
internal sealed class ContentRedaction(SecretRedactor redactor) : BaseProcessor<Activity>
{
    public override void OnEnd(Activity data)
    {
        long? task = null;
        for (var span = data; span is not null && task is null; span = span.Parent)
        {
            if (span.GetTagItem(GenAi.ConversationId) is string id && long.TryParse(id, CultureInfo.InvariantCulture, out var number))
            {
                task = number;
            }
        }

        foreach (var key in GenAi.Content)
        {
            if (data.GetTagItem(key) is string text)
            {
                data.SetTag(key, task is { } own ? redactor.RedactForTask(own, text) : redactor.Redact(text));
            }
        }
    }
}
