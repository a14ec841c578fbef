//! What intake stores of an application's attachments, alike on both backends but for
//! the SQL.

use kopplung_core::store::{AttachmentContent, NewApplication};

/// An attachment's row: its content inline, or the upload that holds it, which the
/// backend binds to the application in the same transaction (then `content` is empty).
pub(crate) struct AttachmentInsert<'a> {
    /// Its place among the application's attachments (as `Inserted::UploadTaken` names it).
    pub(crate) position: usize,
    pub(crate) filename: &'a str,
    pub(crate) media_type: &'a str,
    pub(crate) size: i64,
    pub(crate) sha512: &'a str,
    pub(crate) content: &'a [u8],
    pub(crate) upload: Option<String>,
}

impl AttachmentInsert<'_> {
    /// The rows of `new`'s attachments, in order.
    pub(crate) fn all(new: &NewApplication) -> impl Iterator<Item = AttachmentInsert<'_>> {
        new.attachments
            .iter()
            .enumerate()
            .map(|(position, attachment)| {
                let (content, upload) = match &attachment.content {
                    AttachmentContent::Inline(content) => (content.as_slice(), None),
                    AttachmentContent::Upload(upload) => (&[][..], Some(upload.to_string())),
                };
                AttachmentInsert {
                    position,
                    filename: &attachment.filename,
                    media_type: &attachment.media_type,
                    size: i64::try_from(attachment.size).unwrap_or(i64::MAX),
                    sha512: &attachment.sha512,
                    content,
                    upload,
                }
            })
    }

    /// The position as stored.
    pub(crate) fn stored_position(&self) -> i64 {
        i64::try_from(self.position).unwrap_or(i64::MAX)
    }
}
