using System.Text.Json;
using System.Text.Json.Serialization;

namespace Offload.Protocol;

/// <summary>The one JSON shape for everything that crosses a boundary: camelCase, no nulls written.</summary>
public static class OffloadJson
{
    public static readonly JsonSerializerOptions Options = Create(indented: false);
    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    private static JsonSerializerOptions Create(bool indented) => new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = indented,
    };
}
