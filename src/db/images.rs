//! The `images` table: each user's profile picture, already cleaned.

use crate::db::Result;
use rusqlite::{Connection, OptionalExtension, params};

pub struct Image {
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub etag: String,
}

pub struct NewImage<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
    pub etag: &'a str,
    pub now: i64,
}

/// Stores the user's picture in place of any earlier one (whose URL then
/// stops working, as its id is gone).
pub fn replace(conn: &Connection, image: &NewImage<'_>) -> Result<()> {
    delete_of_user(conn, image.user_id)?;
    conn.prepare_cached(
        "INSERT INTO images (id, user_id, content_type, bytes, etag, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        image.id,
        image.user_id,
        image.content_type,
        image.bytes,
        image.etag,
        image.now
    ])?;
    Ok(())
}

pub fn find(conn: &Connection, id: &str) -> Result<Option<Image>> {
    conn.prepare_cached("SELECT content_type, bytes, etag FROM images WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Image {
                content_type: r.get(0)?,
                bytes: r.get(1)?,
                etag: r.get(2)?,
            })
        })
        .optional()
        .map_err(Into::into)
}

pub fn delete_of_user(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM images WHERE user_id = ?1")?
        .execute([user_id])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{add_test_user, test_connection};

    #[test]
    fn a_new_picture_replaces_the_old_one() {
        let conn = test_connection();
        add_test_user(&conn, "u1", "a@x.io");
        let new = |id| NewImage {
            id,
            user_id: "u1",
            content_type: "image/png",
            bytes: b"png",
            etag: "\"e\"",
            now: 1,
        };
        replace(&conn, &new("i1")).unwrap();
        replace(&conn, &new("i2")).unwrap();
        assert!(find(&conn, "i1").unwrap().is_none());
        assert_eq!(find(&conn, "i2").unwrap().unwrap().bytes, b"png");
        assert!(delete_of_user(&conn, "u1").unwrap());
        assert!(find(&conn, "i2").unwrap().is_none());
    }
}
