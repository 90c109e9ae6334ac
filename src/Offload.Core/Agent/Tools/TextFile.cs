using System.Text;

namespace Offload.Agent.Tools;

/// <summary>The text-only rule shared by Read, Edit and Grep: UTF-8 without NUL bytes.</summary>
internal static class TextFile
{
    public const int SniffBytes = 8192;

    public static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>For writing: no BOM, and a lone surrogate from the model becomes U+FFFD instead of an exception.</summary>
    public static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public static bool LooksBinary(ReadOnlySpan<byte> bytes) => bytes.Contains((byte)0);

    public static bool LooksBinary(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> buffer = stackalloc byte[SniffBytes];
        var read = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return LooksBinary(buffer[..read]);
    }

    public static string BinaryError(string display, long size) =>
        $"{display} is a binary file ({FormatSize(size)}, it contains NUL bytes); only text files can be read or edited.";

    public static string NotUtf8Error(string display, long size) =>
        $"{display} is not valid UTF-8 text ({FormatSize(size)}); only UTF-8 text files can be read or edited.";

    /// <summary>Reads a whole text file for editing, or throws <see cref="ToolException"/> when it is not text.</summary>
    public static string ReadAllStrict(string path, string display)
    {
        var bytes = File.ReadAllBytes(path);
        if (LooksBinary(bytes))
        {
            throw new ToolException(BinaryError(display, bytes.Length));
        }
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new ToolException(NotUtf8Error(display, bytes.Length));
        }
    }

    public static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} bytes",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KB ({bytes} bytes)",
        _ => $"{bytes / (1024.0 * 1024):0.#} MB ({bytes} bytes)",
    };

    /// <summary>Cuts a listing at a line boundary so it fits in <paramref name="maxChars"/>, saying so.</summary>
    public static string Cap(string text, int maxChars)
    {
        if (text.Length <= maxChars)
        {
            return text;
        }
        const string note = "\n[… output cut; narrow the search.]";
        var keep = Math.Max(maxChars - note.Length, 0);
        var lastLine = text.LastIndexOf('\n', Math.Max(keep - 1, 0));
        var cut = lastLine > 0 ? text[..lastLine] : text[..keep];
        return (cut + note)[..Math.Min(cut.Length + note.Length, maxChars)];
    }
}
