using Offload.Models;
using Offload.Protocol;

namespace Offload.Engines.Codex;

/// <summary>
/// Which model Codex runs, as a task stores it: <c>default</c> (no <c>-m</c>: Codex's own choice),
/// <c>openai:NAME</c> (<c>-m NAME</c>; a bare <c>gpt-5</c> means <c>openai:gpt-5</c>), or <c>sim:NAME</c> (the
/// daemon's Simulator, scenario NAME, over the Responses API).
/// </summary>
public static class CodexModel
{
    public const string Default = "default";

    public static string Resolve(string? model, ModelSettings settings)
    {
        var text = model?.Trim() ?? "";
        if (text.Length == 0 || text == Default)
        {
            return Default;
        }

        if (!text.Contains(':', StringComparison.Ordinal))
        {
            return "openai:" + text;
        }

        ModelRef parsed;
        try
        {
            parsed = ModelRef.Parse(text, settings);
        }
        catch (ModelConfigException e)
        {
            throw new OffloadException(ErrorCodes.NoModel, e.Message);
        }

        return parsed.Provider is "openai" or "sim"
            ? parsed.ToString()
            : throw new OffloadException(ErrorCodes.NoModel,
                $"the codex engine runs OpenAI models through Codex CLI, not {parsed}",
                "use --model openai:NAME (or a bare gpt-…), leave --model out for Codex's own default, " +
                "try it offline with --model sim:demo, or run this model with --engine builtin");
    }

    /// <summary>The <c>-m</c> value for Codex, or null for its default.</summary>
    public static string? CliName(string taskModel) =>
        taskModel == Default ? null : taskModel[(taskModel.IndexOf(':', StringComparison.Ordinal) + 1)..];

    public static bool IsSimulated(string taskModel) => taskModel.StartsWith("sim:", StringComparison.Ordinal);
}
