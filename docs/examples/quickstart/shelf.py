"""python shelf.py: the books in the database, as the worker left them."""

import sqlite3

for book_id, title, shelved in sqlite3.connect(".state/bookshelf.db").execute(
    "SELECT book_id, title, shelved FROM book ORDER BY title"
):
    print(f"{book_id}  {title}  {'shelved' if shelved else 'not shelved yet'}")
