"""python shelf.py: the books in the database, as the worker left them."""

import sqlite3

if __name__ == "__main__":
    books = sqlite3.connect(".state/bookshelf.db").execute("SELECT book_id, title, shelved FROM book ORDER BY title")
    for book_id, title, shelved in books:
        print(f"{book_id}  {title}  {'shelved' if shelved else 'not shelved yet'}")
