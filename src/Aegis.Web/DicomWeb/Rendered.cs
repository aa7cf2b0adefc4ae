using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Retrieve;
using Aegis.Dicom;
using Aegis.Web.Auth;

namespace Aegis.Web.DicomWeb;

internal sealed partial class DicomWebService
{
    /// <summary>Rendered instance or frame (PS3.18 10.4.1.1.5): a consumer-format image; JPEG unless PNG is preferred.</summary>
    public Task RenderedAsync(HttpContext ctx, string study, string series, string instance, string? frameList) => RunAsync(ctx, async () =>
    {
        var i = (await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false))[0];
        int frame = frameList is null ? 1 : ParseFrameList(frameList) is [var f] ? f : throw new WebException(400, "render one frame per request");
        bool png = PrefersPng(ctx.Request);
        var p = RenderParameters.Parse(ctx.Request.Query, png);
        AuditAccess(ctx, [i]);
        await RenderToResponseAsync(ctx, i, frame, p).ConfigureAwait(false);
    });

    /// <summary>Thumbnail (PS3.18 10.4.1.1.6) of a study, series, instance or frame: a small rendered image of a representative frame.</summary>
    public Task ThumbnailAsync(HttpContext ctx, string study, string? series, string? instance, string? frameList) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        var instances = await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false);
        int frame = frameList is null ? 1 : ParseFrameList(frameList)[0];
        bool png = PrefersPng(ctx.Request);
        var p = RenderParameters.Parse(ctx.Request.Query, png);
        if (p.ViewportWidth is null) p = p with { ViewportWidth = 128, ViewportHeight = 128 };
        // The representative image: the middle image of the first series that has one.
        InstanceRecord? chosen = null;
        foreach (var group in instances.GroupBy(x => x.SeriesInstanceUid))
        {
            var list = group.ToList();
            foreach (var candidate in list.Skip(list.Count / 2).Concat(list.Take(list.Count / 2)).Take(8))
            {
                var h = await _stored.GetHeaderAsync(candidate, ct).ConfigureAwait(false);
                if (h.PixelData is not null && FrameGeometry.From(h.Header) is not null && !h.Syntax.IsEncapsulated) { chosen = candidate; break; }
            }
            if (chosen is not null) break;
        }
        if (chosen is null) throw new WebException(406, "no uncompressed image to make a thumbnail from (compressed images cannot be rendered yet)");
        AuditAccess(ctx, [chosen]);
        await RenderToResponseAsync(ctx, chosen, frame, p).ConfigureAwait(false);
    });

    private static bool PrefersPng(HttpRequest request)
    {
        foreach (var m in AcceptedMedia.From(request))
        {
            if (m.MediaType is "image/png") return true;
            if (m.MediaType is "image/jpeg" or "image/*" or "*/*") return false;
        }
        throw new WebException(406, "rendered images are served as image/jpeg or image/png");
    }

    private async Task RenderToResponseAsync(HttpContext ctx, InstanceRecord i, int frame, RenderParameters p)
    {
        var ct = ctx.RequestAborted;
        var h = await _stored.GetHeaderAsync(i, ct).ConfigureAwait(false);
        var g = FrameGeometry.From(h.Header);
        if (g is null || h.PixelData is null) throw new WebException(406, "the instance has no image to render");
        if (h.PixelData.Fragments is not null)
            throw new WebException(406, $"the instance is stored compressed ({h.Syntax.Name}); rendering compressed images needs a codec Aegis does not have yet - retrieve the frames instead");
        if (h.Syntax.IsBigEndian) throw new WebException(406, "rendering big endian pixel data is not supported");
        byte[] bytes;
        await using (var blob = await blobs.OpenReadAsync(i.BlobId, ct).ConfigureAwait(false))
        {
            var frames = FrameLocator.Locate(blob, h, g);
            if (frame > frames.Length) throw new WebException(404, $"frame {frame} does not exist; the instance has {frames.Length}");
            bytes = FrameLocator.Read(blob, frames[frame - 1], options.MaxRenderFrameBytes);
        }
        var image = ImageRenderer.Render(h.Header, g, bytes, p);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = p.Png ? "image/png" : "image/jpeg";
        ctx.Response.ContentLength = image.Length;
        await ctx.Response.Body.WriteAsync(image, ct).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ WADO-URI (PS3.18 9)

    /// <summary>WADO-URI: one instance as application/dicom, or rendered as image/jpeg or image/png.</summary>
    public Task WadoUriAsync(HttpContext ctx) => RunAsync(ctx, async () =>
    {
        var q = ctx.Request.Query;
        if (!string.Equals(q["requestType"], "WADO", StringComparison.Ordinal)) throw new WebException(400, "requestType must be WADO");
        string study = q["studyUID"].ToString(), series = q["seriesUID"].ToString(), sop = q["objectUID"].ToString();
        if (study.Length == 0 || series.Length == 0 || sop.Length == 0) throw new WebException(400, "studyUID, seriesUID and objectUID are required");
        var i = (await ResolveAsync(ctx, study, series, sop).ConfigureAwait(false))[0];
        // PS3.18 9.1.2.1.4: contentType is a list; the default for images is image/jpeg.
        var types = q["contentType"].ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => t.Split(';')[0].Trim().ToLowerInvariant()).ToList();
        if (types.Count == 0) types.Add("image/jpeg");
        var type = types.FirstOrDefault(t => t is "application/dicom" or "image/jpeg" or "image/png" or "*/*")
            ?? throw new WebException(406, "contentType must be application/dicom, image/jpeg or image/png");
        var ct = ctx.RequestAborted;
        if (type == "application/dicom")
        {
            var stored = TransferSyntax.Lookup(i.TransferSyntaxUid);
            string? wanted = q["transferSyntax"].ToString() is { Length: > 0 } ts ? ts : AsStored;
            var target = ChooseSyntax(stored, [wanted])
                ?? throw new WebException(406, $"the instance is stored as {stored.Name} and cannot be converted to {wanted}");
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/dicom";
            if (target.Uid == stored.Uid)
            {
                await using var blob = await blobs.OpenReadAsync(i.BlobId, ct).ConfigureAwait(false);
                ctx.Response.ContentLength = blob.Length;
                await blob.CopyToAsync(ctx.Response.Body, 256 * 1024, ct).ConfigureAwait(false);
            }
            else if (await _stored.PrepareNativeTranscodeAsync(i, target, ct).ConfigureAwait(false) is { } streamed)
            {
                ctx.Response.ContentLength = streamed.Length;
                await streamed.CopyToAsync(ctx.Response.Body, ct).ConfigureAwait(false);
            }
            else
            {
                var bytes = await TranscodeAsync(i, target, ct).ConfigureAwait(false);
                ctx.Response.ContentLength = bytes.Length;
                await ctx.Response.Body.WriteAsync(bytes, ct).ConfigureAwait(false);
            }
            AuditTransferred(ctx, [i], AuditOutcome.Success);
            return;
        }
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var p = new RenderParameters { Png = type == "image/png" };
        if (double.TryParse(q["windowCenter"], inv, out double c) && double.TryParse(q["windowWidth"], inv, out double w) && w > 0) p = p with { WindowCenter = c, WindowWidth = w };
        int.TryParse(q["rows"], inv, out int rows);
        int.TryParse(q["columns"], inv, out int cols);
        if (rows > 0 || cols > 0) p = p with { ViewportWidth = cols > 0 ? Math.Min(cols, 8192) : 8192, ViewportHeight = rows > 0 ? Math.Min(rows, 8192) : 8192 };
        if (int.TryParse(q["imageQuality"], inv, out int quality) && quality is >= 1 and <= 100) p = p with { Quality = quality };
        int frame = int.TryParse(q["frameNumber"], inv, out int fn) && fn > 0 ? fn : 1;
        AuditAccess(ctx, [i]);
        await RenderToResponseAsync(ctx, i, frame, p).ConfigureAwait(false);
    });

    // ------------------------------------------------------------------ delete (non-standard; admin only)

    /// <summary>Removes a study, series or instance: index first (one transaction), then the unreferenced blobs. Audited.</summary>
    public Task DeleteAsync(HttpContext ctx, string study, string? series, string? instance) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        IReadOnlyList<InstanceRecord> found = instance is not null
            ? (await index.GetInstanceAsync(instance, ct).ConfigureAwait(false)) is { } one ? [one] : []
            : await index.FindInstancesAsync(series is not null ? QueryRetrieveLevel.Series : QueryRetrieveLevel.Study, [series ?? study], ct).ConfigureAwait(false);
        found = found.Where(x => x.StudyInstanceUid == study && (series is null || x.SeriesInstanceUid == series)).ToList();
        if (found.Count == 0) throw new WebException(404, "nothing to delete there");
        var level = instance is not null ? QueryRetrieveLevel.Image : series is not null ? QueryRetrieveLevel.Series : QueryRetrieveLevel.Study;
        var result = await index.DeleteAsync(level, instance ?? series ?? study, ct).ConfigureAwait(false);
        var actor = Actor(ctx);
        audit.Post(AuditEvent.StudyDeleted(actor, found[0].PatientId, study, result.Found ? AuditOutcome.Success : AuditOutcome.MinorFailure));
        if (!result.Found) throw new WebException(404, "nothing to delete there");
        // Blobs only after the index no longer points at them: a crash in between leaves orphans, never dangling rows.
        foreach (var id in result.BlobIds)
        {
            _stored.Forget(id);
            await blobs.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        log.LogInformation("{User} deleted {Level} ({Count} instances)", ctx.User.UserName(), level.ToDicom(), result.BlobIds.Count);
        ctx.Response.StatusCode = 204;
    });
}
