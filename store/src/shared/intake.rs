//! What intake stores of an application's attachments, alike on both backends: their
//! rows and the binding of their uploads, as statements each backend runs.

use super::Param;
use super::writes::Write;
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
    pub(crate) slot: Option<&'a str>,
}

impl<'a> AttachmentInsert<'a> {
    /// The rows of `new`'s attachments, in order.
    pub(crate) fn all(new: &'a NewApplication) -> impl Iterator<Item = AttachmentInsert<'a>> {
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
                    slot: attachment.slot.as_deref(),
                }
            })
    }

    /// The position as stored.
    fn stored_position(&self) -> i64 {
        i64::try_from(self.position).unwrap_or(i64::MAX)
    }

    /// Binds its upload, if it has one, to application `id` of `client_id`, in the
    /// transaction that stores the application (one upload, one application): the
    /// upload is no longer free unless this changes one row.
    pub(crate) fn bind_upload(&self, id: &str, client_id: &str) -> Option<Write<'a>> {
        let upload = self.upload.clone()?;
        Some(Write {
            sql: "UPDATE uploads SET application_id = $1
                  WHERE id = $2 AND client_id = $3 AND application_id IS NULL
                    AND completed_at IS NOT NULL",
            params: vec![
                Param::Text(id.to_owned()),
                Param::Text(upload),
                Param::Text(client_id.to_owned()),
            ],
        })
    }

    /// Its row of application `id`.
    pub(crate) fn insert(&self, id: &str) -> Write<'a> {
        Write {
            sql: "INSERT INTO attachments
                    (application_id, position, filename, media_type, size, sha512, content, upload_id, slot)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params: vec![
                Param::Text(id.to_owned()),
                Param::Integer(self.stored_position()),
                Param::Text(self.filename.to_owned()),
                Param::Text(self.media_type.to_owned()),
                Param::Integer(self.size),
                Param::Text(self.sha512.to_owned()),
                Param::Blob(self.content),
                Param::MaybeText(self.upload.clone()),
                Param::MaybeText(self.slot.map(str::to_owned)),
            ],
        }
    }
}
